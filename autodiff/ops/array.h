// Shape and indexing ops: reshape, transpose, expand/squeeze, broadcast, concat/stack, slice,
// gather, one_hot, where, fill, shape/size, tile, pad. Shapes are checked when an op is recorded
// (ValueError naming the op, its node and the shapes); dims unknown until run time are checked
// then (InvalidArgumentError). Every op taking a float tensor has a gradient, itself recorded as
// ops, so higher orders work; shape, size, one_hot and fill have none. Defined by family:
// shape_ops.cpp (reshape ... broadcast_to), slicing.cpp (concat, stack, slice, pad, tile),
// indexing.cpp (gather, one_hot, where), fills.cpp (fill, zeros, ones, shape, size).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

// Same elements, new shape; at most one dim may be -1 (inferred). No copy at run time.
[[nodiscard]] Tensor reshape(const Tensor& x, const Shape& shape);
// Shape given at run time by a 1-D Int64 tensor (e.g. from ad::shape); static rank from its length.
// The static shape is exact when `shape` is a constant or ad::shape(y) (then it is y's).
[[nodiscard]] Tensor reshape(const Tensor& x, const Tensor& shape);
// Permutes dims: output dim i is input dim perm[i]; an empty perm reverses them.
[[nodiscard]] Tensor transpose(const Tensor& x, const std::vector<int>& perm = {});
// Inserts a size-1 dim at `axis` (-rank-1 to rank). No copy at run time.
[[nodiscard]] Tensor expand_dims(const Tensor& x, int axis);
// Removes the listed size-1 dims. With `axes` empty it removes the dims known to be 1 when the
// graph is built; unlike TF, dims unknown then are kept, so the rank never depends on a batch size.
[[nodiscard]] Tensor squeeze(const Tensor& x, const std::vector<int>& axes = {});
// x repeated NumPy-style to the fully defined `shape`.
[[nodiscard]] Tensor broadcast_to(const Tensor& x, const Shape& shape);
// Joins tensors of one dtype and rank along `axis`; the other dims must agree.
[[nodiscard]] Tensor concat(const std::vector<Tensor>& xs, int axis);
// Joins tensors of one shape along a new dim at `axis` (-rank-1 to rank).
[[nodiscard]] Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
// x[begin : begin + size] per dim; a size of -1 runs to the end of that dim.
[[nodiscard]] Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin,
                           const std::vector<std::int64_t>& size);
// Rows of `params` along `axis` picked by Int64 `indices` (any shape): the result has shape
// params[:axis] + indices + params[axis+1:]. An out-of-range index is an InvalidArgumentError
// naming its value and position. The gradient adds the rows of repeated indices.
[[nodiscard]] Tensor gather(const Tensor& params, const Tensor& indices, int axis = 0);
// One-hot encoding of Int64 indices along a new last axis of size `depth`; as in TF, an index
// outside [0, depth) gives a row of off_value.
[[nodiscard]] Tensor one_hot(const Tensor& indices, std::int64_t depth, double on_value = 1.0,
                             double off_value = 0.0, DType dtype = DType::Float32);
// Elementwise choice: where(cond, a, b) takes a where cond is true. cond, a and b broadcast.
[[nodiscard]] Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// A tensor of `shape` (fully defined) filled with `value`.
[[nodiscard]] Tensor fill(Graph& graph, const Shape& shape, double value,
                          DType dtype = DType::Float32);
// A tensor whose shape is the run-time value of the 1-D Int64 `dims`.
[[nodiscard]] Tensor fill(const Tensor& dims, double value, DType dtype = DType::Float32);
// fill with 0 and with 1.
[[nodiscard]] Tensor zeros(Graph& graph, const Shape& shape, DType dtype = DType::Float32);
[[nodiscard]] Tensor ones(Graph& graph, const Shape& shape, DType dtype = DType::Float32);
// The run-time shape of x as a 1-D Int64 tensor, and its element count as an Int64 scalar.
[[nodiscard]] Tensor shape(const Tensor& x);
[[nodiscard]] Tensor size(const Tensor& x);
// x repeated multiples[d] times along each dim d.
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
