// Fills and shape queries (array.h): fill, zeros, ones (static or run-time dims), shape, size,
// and static_dims_value, what is known while building about a run-time shape tensor.
#include <algorithm>
#include <string>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/internal/convert_element.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/array_loops.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {
using detail::op_label;
using detail::require_tensor;
using detail::shape_from_input;
using detail::vector_string;
}  // namespace

// ---- fill, shape, size --------------------------------------------------------------------------

namespace {

struct FillAttrs {
  double value = 0;
};

// Every dtype, with Cast's conversion of `value` (zeros and ones initialize int32 variables too).
void fill_array(Array& out, double value) {
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    std::fill(y.begin(), y.end(), detail::convert_element<T>(value));
  });
}

void fill_kernel(KernelContext& ctx) {
  fill_array(ctx.allocate_output(0, ctx.node().outputs[0].shape), ctx.attrs<FillAttrs>().value);
}
void fill_by_tensor_kernel(KernelContext& ctx) {
  fill_array(ctx.allocate_output(0, shape_from_input(ctx, 0)), ctx.attrs<FillAttrs>().value);
}

void shape_kernel(KernelContext& ctx) {
  const Shape& s = ctx.input(0).shape();
  Array& out = ctx.allocate_output(0, Shape{s.rank()});
  std::copy(s.dims().begin(), s.dims().end(), out.mutable_data<std::int64_t>().begin());
}
void size_kernel(KernelContext& ctx) {
  ctx.allocate_output(0, Shape{}).mutable_data<std::int64_t>()[0] = ctx.input(0).size();
}

const OpDef kFillOp{.name = "Fill", .kernel = fill_kernel, .narrow_integers = true};
const OpDef kFillByTensorOp{
    .name = "Fill", .kernel = fill_by_tensor_kernel, .narrow_integers = true};
const OpDef kShapeOp{.name = "Shape", .kernel = shape_kernel, .narrow_integers = true};
const OpDef kSizeOp{.name = "Size", .kernel = size_kernel, .narrow_integers = true};

}  // namespace

namespace detail {

Shape static_dims_value(const Tensor& dims, std::string_view op, bool allow_inferred) {
  require_tensor(dims, op);
  if (dims.dtype() != DType::Int64 || dims.shape().rank() != 1 || dims.shape()[0] < 0) {
    throw ValueError(str(op, ": the shape tensor '", dims.name(), "' is ", dims.dtype(),
                         dims.shape(), "; expected a 1-D int64 tensor of known length"));
  }
  if (dims.shape()[0] > Shape::kMaxRank) {
    throw ValueError(str(op, ": the shape tensor '", dims.name(), "' has ", dims.shape()[0],
                         " entries; the maximum rank is ", Shape::kMaxRank));
  }
  if (const auto value = constant_value(dims)) {
    const auto v = value->data<std::int64_t>();
    const auto inferred = std::count(v.begin(), v.end(), std::int64_t{-1});
    const bool negative = std::any_of(v.begin(), v.end(), [](auto d) { return d < -1; });
    if (negative || inferred > (allow_inferred ? 1 : 0)) {
      throw ValueError(
          str(op, ": the shape ", vector_string(v), " from '", dims.name(), "' has negative dims"));
    }
    return Shape(v);
  }
  if (!dims.is_op() && dims.op().op == &kShapeOp) {
    const auto& in = dims.op().inputs[0];
    return Tensor(&dims.graph(), in.node, in.index).shape();
  }
  Shape unknown;
  for (std::int64_t d = 0; d < dims.shape()[0]; ++d) unknown.push_back(-1);
  return unknown;
}

}  // namespace detail

Tensor fill(Graph& graph, const Shape& shape, double value, DType dtype) {
  if (!shape.is_fully_defined()) {
    throw ValueError(str(op_label(graph, "fill", "Fill"), ": shape ", shape,
                         " must be fully defined (use the overload taking a dims tensor)"));
  }
  return graph.record1(kFillOp, {}, {dtype, shape}, FillAttrs{value}, "Fill");
}

Tensor fill(const Tensor& dims, double value, DType dtype) {
  require_tensor(dims, "fill");
  const Shape shape =
      detail::static_dims_value(dims, op_label(dims.graph(), "fill", "Fill"), false);
  const Tensor inputs[] = {dims};
  return dims.graph().record1(kFillByTensorOp, inputs, {dtype, shape}, FillAttrs{value}, "Fill");
}

Tensor zeros(Graph& graph, const Shape& shape, DType dtype) {
  return fill(graph, shape, 0.0, dtype);
}
Tensor ones(Graph& graph, const Shape& shape, DType dtype) {
  return fill(graph, shape, 1.0, dtype);
}

Tensor shape(const Tensor& x) {
  require_tensor(x, "shape");
  const Tensor inputs[] = {x};
  return x.graph().record1(kShapeOp, inputs, {DType::Int64, Shape{x.shape().rank()}}, {}, "Shape");
}

Tensor size(const Tensor& x) {
  require_tensor(x, "size");
  const Tensor inputs[] = {x};
  return x.graph().record1(kSizeOp, inputs, {DType::Int64, Shape{}}, {}, "Size");
}

}  // namespace ad
