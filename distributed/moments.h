// Statistics over the global batch, for synchronized batch normalization: every rank's
// (count, mean, M2) merged in rank order with Chan's formula, in double.
#pragma once

#include <vector>

#include "gradtape/autodiff/ops/global_moments_hook.h"
#include "gradtape/autodiff/ops/nn.h"
#include "gradtape/autodiff/tensor.h"

namespace ad::distributed {

// Mean and biased variance of x over `axes` (as ad::moments) across the examples of every rank:
// each rank's two-pass local moments and element count are gathered and merged in rank order with
// Chan et al.'s pairwise formula in double (never E[x^2] - E[x]^2, so inputs with a large mean
// stay accurate), then rounded once to x's dtype. The kept dims must agree across ranks; the
// reduced ones may differ, including ranks with no examples. The result is bitwise the same on
// every rank. Differentiable at every order: the gradient all-reduces the incoming gradients of
// the mean and the variance (the objective being the sum of the ranks' losses).
[[nodiscard]] Moments global_moments(const Tensor& x, const std::vector<int>& axes,
                                     bool keepdims = false);
// The same statistics and their count: the number of elements per channel over every rank, a
// Float64 scalar (0 when every rank's x is empty, where mean and variance are NaN).
[[nodiscard]] nn::GlobalMoments global_moments_and_count(const Tensor& x,
                                                         const std::vector<int>& axes,
                                                         bool keepdims = false);

}  // namespace ad::distributed
