// The ops every graph needs: placeholders, constants, identity, sums of gradients, zeros/ones like
// another tensor, stop_gradient, group, and reducing a broadcast gradient back to its input's
// shape.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

// A value fed at run time; `shape` may contain -1 dims. Running without feeding it is an
// InvalidArgumentError naming it.
[[nodiscard]] Tensor placeholder(Graph& graph, DType dtype, const Shape& shape,
                                 std::string_view name = {});
// Takes `default_value` unless fed; the fed value must fit `shape`.
[[nodiscard]] Tensor placeholder_with_default(const Tensor& default_value, const Shape& shape,
                                              std::string_view name = {});
[[nodiscard]] Tensor constant(Graph& graph, const Array& value, std::string_view name = {});
// The value of a Const tensor; nullopt for any other tensor.
[[nodiscard]] std::optional<Array> constant_value(const Tensor& t);
// A scalar constant of `dtype`.
[[nodiscard]] Tensor scalar(Graph& graph, double value, DType dtype);
[[nodiscard]] Tensor identity(const Tensor& x, std::string_view name = {});
// The elementwise sum of tensors of one shape and dtype.
[[nodiscard]] Tensor add_n(std::span<const Tensor> xs, std::string_view name = {});
[[nodiscard]] Tensor zeros_like(const Tensor& x);
[[nodiscard]] Tensor ones_like(const Tensor& x);
// x's shape (known at run time) filled with `value`.
[[nodiscard]] Tensor fill_like(const Tensor& x, double value);
// The value of x; no gradient flows through it.
[[nodiscard]] Tensor stop_gradient(const Tensor& x, std::string_view name = {});
// An op without outputs that runs all of `ops` (as control inputs). Empty Tensors in `ops` are
// skipped; a group of nothing is an empty Tensor (which group() skips in turn).
[[nodiscard]] Tensor group(std::span<const Tensor> ops, std::string_view name = {});
[[nodiscard]] Tensor group(std::initializer_list<Tensor> ops, std::string_view name = {});
[[nodiscard]] Tensor no_op(Graph& graph, std::string_view name = {});

// Sums `grad` over the axes along which `like` was broadcast to grad's shape, giving like's shape
// (resolved at run time, so unknown batch dims work). Identity when the shapes already agree.
[[nodiscard]] Tensor sum_to_shape_of(const Tensor& grad, const Tensor& like);
// Broadcasts x to the run-time shape of `like`.
[[nodiscard]] Tensor broadcast_like(const Tensor& x, const Tensor& like);

// The static shape of broadcasting a with b (NumPy rules, -1 for unknown); ValueError naming `op`.
[[nodiscard]] Shape broadcast_static_shape(const char* op, const Shape& a, const Shape& b);

namespace detail {
extern const OpDef kPlaceholderOp;
}  // namespace detail

}  // namespace ad
