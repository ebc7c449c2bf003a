// Reductions over any set of axes, with keepdims. `axes` empty means all axes; negative axes count
// from the end. Float32 sums accumulate blockwise in a fixed order, so results are identical for
// any thread count and within 1e-5 relative of a float64 reference.
#pragma once

#include <vector>

#include "autodiff/tensor.h"

namespace ad {

[[nodiscard]] Tensor reduce_sum(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
[[nodiscard]] Tensor reduce_mean(const Tensor& x, const std::vector<int>& axes = {},
                                 bool keepdims = false);
[[nodiscard]] Tensor reduce_max(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
[[nodiscard]] Tensor reduce_min(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
[[nodiscard]] Tensor reduce_prod(const Tensor& x, const std::vector<int>& axes = {},
                                 bool keepdims = false);
// log(sum(exp(x))) computed stably.
[[nodiscard]] Tensor reduce_logsumexp(const Tensor& x, const std::vector<int>& axes = {},
                                      bool keepdims = false);
// Index of the largest element along `axis` (Int64); no gradient.
[[nodiscard]] Tensor argmax(const Tensor& x, int axis);
[[nodiscard]] Tensor argmin(const Tensor& x, int axis);

}  // namespace ad
