// Shape and indexing ops: reshape, transpose, expand/squeeze, broadcast, concat/stack, slice,
// gather, one_hot, where, fill, shape/size.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "autodiff/graph.h"
#include "autodiff/tensor.h"

namespace ad {

// Same elements, new shape; at most one dim may be -1 (inferred). No copy at run time.
[[nodiscard]] Tensor reshape(const Tensor& x, const Shape& shape);
// Shape given at run time by a 1-D Int64 tensor (e.g. from ad::shape); static rank from its length.
[[nodiscard]] Tensor reshape(const Tensor& x, const Tensor& shape);
// Permutes dims; an empty perm reverses them.
[[nodiscard]] Tensor transpose(const Tensor& x, const std::vector<int>& perm = {});
[[nodiscard]] Tensor expand_dims(const Tensor& x, int axis);
// Removes the listed size-1 dims (all size-1 dims when `axes` is empty).
[[nodiscard]] Tensor squeeze(const Tensor& x, const std::vector<int>& axes = {});
[[nodiscard]] Tensor broadcast_to(const Tensor& x, const Shape& shape);
[[nodiscard]] Tensor concat(const std::vector<Tensor>& xs, int axis);
[[nodiscard]] Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
// x[begin : begin + size] per dim; a size of -1 runs to the end of that dim.
[[nodiscard]] Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin,
                           const std::vector<std::int64_t>& size);
// Rows of `params` along `axis` picked by Int64 `indices` (any shape); out-of-range indices are an
// InvalidArgumentError naming the index.
[[nodiscard]] Tensor gather(const Tensor& params, const Tensor& indices, int axis = 0);
// One-hot encoding of Int64 indices along a new last axis of size `depth`.
[[nodiscard]] Tensor one_hot(const Tensor& indices, std::int64_t depth, double on_value = 1.0,
                             double off_value = 0.0, DType dtype = DType::Float32);
// Elementwise choice: where(cond, a, b) takes a where cond is true. cond, a and b broadcast.
[[nodiscard]] Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// A tensor of `shape` (fully defined) filled with `value`.
[[nodiscard]] Tensor fill(Graph& graph, const Shape& shape, double value,
                          DType dtype = DType::Float32);
// A tensor whose shape is the run-time value of the 1-D Int64 `dims`.
[[nodiscard]] Tensor fill(const Tensor& dims, double value, DType dtype = DType::Float32);
[[nodiscard]] Tensor zeros(Graph& graph, const Shape& shape, DType dtype = DType::Float32);
[[nodiscard]] Tensor ones(Graph& graph, const Shape& shape, DType dtype = DType::Float32);
// The run-time shape of x as a 1-D Int64 tensor, and its element count as an Int64 scalar.
[[nodiscard]] Tensor shape(const Tensor& x);
[[nodiscard]] Tensor size(const Tensor& x);
[[nodiscard]] Tensor tile(const Tensor& x, const std::vector<std::int64_t>& multiples);
// Zero padding: paddings[d] = {before, after}.
[[nodiscard]] Tensor pad(const Tensor& x,
                         const std::vector<std::pair<std::int64_t, std::int64_t>>& paddings);

namespace detail {
// What is known while building about the shape a 1-D Int64 `dims` tensor holds at run time: a
// constant's values, x's static shape for dims = shape(x), otherwise -1 (unknown) dims of the
// right rank. ValueError naming `op` when dims is not 1-D Int64 of known length, or is a constant
// with negative entries (one -1 is accepted when `allow_inferred`, as reshape does).
[[nodiscard]] Shape static_dims_value(const Tensor& dims, std::string_view op, bool allow_inferred);
}  // namespace detail

}  // namespace ad
