// TraceRead and its gradient TraceScatter: iteration t's slice of a While node's flat trace.
#include "autodiff/internal/while_loop_trace.h"

#include <cstring>

#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"

namespace ad::detail {

namespace {

struct TraceAttrs {
  TraceLayout layout;
};

// The offset (in elements) and shape of iteration t's value; InvalidArgumentError when t is not an
// iteration of the record.
std::pair<std::int64_t, Shape> locate(const KernelContext& ctx, const Array& shapes,
                                      const Array& t_value, const TraceLayout& layout) {
  const std::int64_t t = t_value.data<std::int64_t>()[0];
  const auto record = shapes.data<std::int64_t>();
  const auto iterations = static_cast<std::int64_t>(record.size()) / layout.stride;
  if (t < 0 || t >= iterations) {
    ctx.fail(str("iteration ", t, " is outside the ", iterations, " recorded iterations"));
  }
  const std::size_t at = static_cast<std::size_t>(t * layout.stride + layout.base);
  std::vector<std::int64_t> dims(
      record.begin() + static_cast<std::ptrdiff_t>(at) + 1,
      record.begin() + static_cast<std::ptrdiff_t>(at) + 1 + layout.rank);
  return {record[at], Shape(dims)};
}

void trace_read_kernel(KernelContext& ctx) {
  const auto& layout = ctx.attrs<TraceAttrs>().layout;
  const auto [offset, shape] = locate(ctx, ctx.input(1), ctx.input(2), layout);
  const Array& trace = ctx.input(0);
  Array& out = ctx.allocate_output(0, shape);
  const std::size_t element = dtype_size(trace.dtype());
  if (static_cast<std::size_t>(offset) * element + out.nbytes() > trace.nbytes()) {
    ctx.fail("the record is shorter than its shapes say");
  }
  if (out.nbytes() != 0) {
    std::memcpy(
        out.raw_mutable_data(),
        static_cast<const char*>(trace.raw_data()) + offset * static_cast<std::int64_t>(element),
        out.nbytes());
  }
}

// Inputs: the slice's gradient, the trace (for its size), shapes, t. Output: zeros of the trace's
// size holding the gradient at iteration t's place.
void trace_scatter_kernel(KernelContext& ctx) {
  const auto& layout = ctx.attrs<TraceAttrs>().layout;
  const auto [offset, shape] = locate(ctx, ctx.input(2), ctx.input(3), layout);
  const Array& grad = ctx.input(0);
  const Array& trace = ctx.input(1);
  if (!(grad.shape() == shape)) ctx.fail(str("gradient of shape ", grad.shape(), " for ", shape));
  Array& out = ctx.allocate_output(0, trace.shape());
  if (out.nbytes() == 0) return;
  std::memset(out.raw_mutable_data(), 0, out.nbytes());
  const auto element = static_cast<std::int64_t>(dtype_size(trace.dtype()));
  if (grad.nbytes() != 0) {
    std::memcpy(static_cast<char*>(out.raw_mutable_data()) + offset * element, grad.raw_data(),
                grad.nbytes());
  }
}

void trace_read_gradient(GradContext& g);
void trace_scatter_gradient(GradContext& g);

const OpDef kTraceReadOp{
    .name = "TraceRead", .kernel = trace_read_kernel, .gradient = trace_read_gradient};
const OpDef kTraceScatterOp{
    .name = "TraceScatter", .kernel = trace_scatter_kernel, .gradient = trace_scatter_gradient};

void trace_read_gradient(GradContext& g) {
  const Tensor inputs[] = {g.grad_output(0), g.input(0), g.input(1), g.input(2)};
  g.set(0, g.graph().record1(kTraceScatterOp, inputs, {g.input(0).dtype(), g.input(0).shape()},
                             g.attrs<TraceAttrs>(), "TraceScatter"));
}

void trace_scatter_gradient(GradContext& g) {
  g.set(0, trace_read(g.grad_output(0), g.input(2), g.input(3), g.attrs<TraceAttrs>().layout,
                      g.input(0).shape()));
}

}  // namespace

Tensor trace_read(const Tensor& trace, const Tensor& shapes, const Tensor& t, TraceLayout layout,
                  const Shape& shape) {
  const Tensor inputs[] = {trace, shapes, t};
  return trace.graph().record1(kTraceReadOp, inputs, {trace.dtype(), shape}, TraceAttrs{layout},
                               "TraceRead");
}

}  // namespace ad::detail
