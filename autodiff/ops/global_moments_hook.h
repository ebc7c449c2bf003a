// The collectives of synchronized batch normalization as replaceable hooks: the layers library
// cannot link gradtape::distributed, so ad::distributed::init() registers its global_moments and
// its all-reduce here, and a `synchronized` BatchNormalization calls whatever is registered.
#pragma once

#include <functional>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad::nn {

// Statistics over the examples of every process of the job.
struct GlobalMoments {
  Tensor mean;      // x's dtype, keepdims shape
  Tensor variance;  // biased, likewise
  Tensor count;     // Float64 scalar: the elements per channel over all processes (0: none)
};

// Mean and biased variance of x over `reduction_axes` (keepdims) across the examples of every
// process of the job, and their number; mean and variance are differentiable at every order.
using GlobalMomentsHook =
    std::function<GlobalMoments(const Tensor& x, const std::vector<int>& reduction_axes)>;

// The elementwise sum of x over the processes of the job, in a fixed process order (the same bits
// on every process), x's shape; differentiable (the gradient is the sum of the incoming ones).
using GlobalSumHook = std::function<Tensor(const Tensor& x)>;

// Register a hook (an empty function unregisters). Not thread-safe against concurrent graph
// building: call them once at start-up, as distributed::init() does.
void set_global_moments_hook(GlobalMomentsHook hook);
void set_global_sum_hook(GlobalSumHook hook);
// The registered hooks; empty functions when none is.
[[nodiscard]] const GlobalMomentsHook& global_moments_hook();
[[nodiscard]] const GlobalSumHook& global_sum_hook();

}  // namespace ad::nn
