// Reductions over any set of axes, with keepdims. `axes` empty means all axes; negative axes count
// from the end; a repeated or out-of-range axis is a ValueError. Float32 sums accumulate in double,
// blockwise in a fixed order, so results are identical for any thread count and within 1e-5
// relative of a float64 reference. Over zero elements: sum 0, prod 1, mean NaN, logsumexp -inf;
// max, min, argmax, argmin (and an int64 mean) fail with InvalidArgumentError, since they have no
// value there.
#pragma once

#include <string>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad {

// Float32, float64 or int64.
[[nodiscard]] Tensor reduce_sum(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
// Float32, float64 or int64 (an int64 mean truncates, as TF).
[[nodiscard]] Tensor reduce_mean(const Tensor& x, const std::vector<int>& axes = {},
                                 bool keepdims = false);
// Float32, float64 or int64; NaN wins. The gradient is split evenly between tied maxima (as TF).
[[nodiscard]] Tensor reduce_max(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
[[nodiscard]] Tensor reduce_min(const Tensor& x, const std::vector<int>& axes = {},
                                bool keepdims = false);
// Float32, float64 or int64. The gradient is prod / x, exact where x != 0 (zeros give inf/NaN).
[[nodiscard]] Tensor reduce_prod(const Tensor& x, const std::vector<int>& axes = {},
                                 bool keepdims = false);
// log(sum(exp(x))) computed stably (the max is subtracted first); float32 or float64.
[[nodiscard]] Tensor reduce_logsumexp(const Tensor& x, const std::vector<int>& axes = {},
                                      bool keepdims = false);
// Index of the largest element along `axis` (Int64; the first one on ties; NaN counts as the
// largest); float32, float64 or int64 input; `axis` is removed from the shape; no gradient.
[[nodiscard]] Tensor argmax(const Tensor& x, int axis);
[[nodiscard]] Tensor argmin(const Tensor& x, int axis);

namespace detail {
// For gradients and compositions (moments): x with size-1 dims inserted at `axes` (sorted, indices
// in the result), i.e. a reduction's output in its keepdims shape; and the inverse. Both share
// storage at run time.
[[nodiscard]] Tensor expand_reduced_dims(const Tensor& x, const std::vector<int>& axes);
[[nodiscard]] Tensor squeeze_reduced_dims(const Tensor& x, const std::vector<int>& axes);
// The number of elements of x over `axes` (sorted), from its run-time shape, as a scalar of x's
// dtype; a constant when those dims are known statically.
[[nodiscard]] Tensor reduced_count(const Tensor& x, const std::vector<int>& axes);
// `axes` resolved against x's rank as the reductions do (empty: all; negative from the end;
// sorted), or a ValueError naming `op` and `node`.
[[nodiscard]] std::vector<int> resolve_axes(const char* op, const std::string& node,
                                            const Tensor& x, const std::vector<int>& axes);
}  // namespace detail

}  // namespace ad
