// Placeholders, constants, identity, add_n, zeros/ones like, stop_gradient, group, sum_to.
#include "autodiff/ops/basic.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/elementwise_kernels_isa.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace {

struct ConstAttrs {
  Array value;
};
struct FillAttrs {
  double value;
};

void placeholder_kernel(KernelContext& ctx) {
  const auto& out = ctx.node().outputs[0];
  ctx.fail(str("you must feed a value for placeholder '", ctx.node().name, "' (", out.dtype,
               out.shape, ")"));
}

void forward_input_kernel(KernelContext& ctx) { ctx.set_output(0, ctx.input(0)); }
void pass_gradient(GradContext& g) { g.set(0, g.grad_output(0)); }

void const_kernel(KernelContext& ctx) { ctx.set_output(0, ctx.attrs<ConstAttrs>().value); }

void add_n_kernel(KernelContext& ctx) {
  const Array& first = ctx.input(0);
  Array& out = ctx.allocate_output(0, first.shape());
  dispatch_floating(first.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    const auto n = static_cast<std::int64_t>(y.size());
    const T* a = first.data<T>().data();
    for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = a[i];
    for (int k = 1; k < ctx.num_inputs(); ++k) {
      if (!(ctx.input(k).shape() == first.shape())) {
        ctx.fail(str("input ", k, " has shape ", ctx.input(k).shape(), " but input 0 has ",
                     first.shape()));
      }
      GRADTAPE_ISA_KERNEL(binary_elements<detail::AddFn, T>)
      (n, y.data(), 1, ctx.input(k).data<T>().data(), 1, y.data());
    }
  });
}
void add_n_gradient(GradContext& g) {
  for (int i = 0; i < g.num_inputs(); ++i) g.set(i, g.grad_output(0));
}

void fill_like_kernel(KernelContext& ctx) {
  Array& out = ctx.allocate_output(0, ctx.input(0).shape());
  const double value = ctx.attrs<FillAttrs>().value;
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    std::fill(y.begin(), y.end(), static_cast<T>(value));
  });
}

void no_op_kernel(KernelContext&) {}

template <class T>
void sum_to(const Array& grad, Array& out, double* a) {
  const auto plan = detail::make_broadcast_plan(grad.shape(), out.shape(), out.shape());
  std::fill_n(a, out.size(), 0.0);
  const T* g = grad.data<T>().data();
  GRADTAPE_ISA_KERNEL(sum_runs<T>)(plan, g, a);
  auto y = out.mutable_data<T>();
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<T>(a[i]);
}

// Input 0: the gradient; input 1: the tensor whose run-time shape the result takes.
void sum_to_kernel(KernelContext& ctx) {
  const Array& grad = ctx.input(0);
  const Shape& target = ctx.input(1).shape();
  if (grad.shape() == target) {
    ctx.set_output(0, grad);
    return;
  }
  if (target.rank() > grad.rank()) {
    ctx.fail(str("cannot sum ", grad.shape(), " to the larger rank of ", target));
  }
  for (int d = 0; d < target.rank(); ++d) {
    const auto gd = grad.shape()[grad.rank() - target.rank() + d];
    if (target[d] != 1 && target[d] != gd)
      ctx.fail(str("cannot sum ", grad.shape(), " to ", target));
  }
  Array& out = ctx.allocate_output(0, target);
  // The sums in double, in a buffer counted against the session's memory cap.
  const Scratch acc = ctx.scratch<double>(out.size(), "the double sums");
  dispatch_floating(grad.dtype(),
                    [&](auto tag) { sum_to<decltype(tag)>(grad, out, acc.data<double>()); });
}

template <class T>
void broadcast_into(const Array& x, Array& out) {
  const auto plan = detail::make_broadcast_plan(out.shape(), x.shape(), x.shape());
  const T* src = x.data<T>().data();
  T* y = out.mutable_data<T>().data();
  detail::for_each_run(plan, [&](std::int64_t off, std::int64_t x_off, std::int64_t, std::int64_t n,
                                 std::int64_t sx, std::int64_t) {
    if (sx == 0) {
      std::fill(y + off, y + off + n, src[x_off]);
    } else {
      std::copy(src + x_off, src + x_off + n, y + off);
    }
  });
}

void broadcast_like_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const Shape& target = ctx.input(1).shape();
  if (x.shape() == target) {
    ctx.set_output(0, x);
    return;
  }
  if (x.rank() > target.rank()) ctx.fail(str("cannot broadcast ", x.shape(), " to ", target));
  for (int d = 0; d < x.rank(); ++d) {
    const auto td = target[target.rank() - x.rank() + d];
    if (x.shape()[d] != 1 && x.shape()[d] != td)
      ctx.fail(str("cannot broadcast ", x.shape(), " to ", target));
  }
  Array& out = ctx.allocate_output(0, target);
  dispatch_all(x.dtype(), [&](auto tag) { broadcast_into<decltype(tag)>(x, out); });
}

void sum_to_gradient(GradContext& g) { g.set(0, broadcast_like(g.grad_output(0), g.input(0))); }
void broadcast_like_gradient(GradContext& g) {
  g.set(0, sum_to_shape_of(g.grad_output(0), g.input(0)));
}

const OpDef kConstOp{.name = "Const", .kernel = const_kernel, .narrow_integers = true};
const OpDef kIdentityOp{.name = "Identity",
                        .kernel = forward_input_kernel,
                        .gradient = pass_gradient,
                        .narrow_integers = true};
const OpDef kPlaceholderWithDefaultOp{.name = "PlaceholderWithDefault",
                                      .kernel = forward_input_kernel,
                                      .gradient = pass_gradient,
                                      .narrow_integers = true};
const OpDef kStopGradientOp{
    .name = "StopGradient", .kernel = forward_input_kernel, .narrow_integers = true};
const OpDef kAddNOp{.name = "AddN", .kernel = add_n_kernel, .gradient = add_n_gradient};
const OpDef kFillLikeOp{.name = "FillLike", .kernel = fill_like_kernel};
const OpDef kNoOp{.name = "NoOp", .kernel = no_op_kernel};
const OpDef kSumToOp{.name = "SumToShapeOf", .kernel = sum_to_kernel, .gradient = sum_to_gradient};
const OpDef kBroadcastLikeOp{
    .name = "BroadcastLike", .kernel = broadcast_like_kernel, .gradient = broadcast_like_gradient};

}  // namespace

namespace detail {
const OpDef kPlaceholderOp{
    .name = "Placeholder", .kernel = placeholder_kernel, .narrow_integers = true};
}  // namespace detail

Tensor placeholder(Graph& graph, DType dtype, const Shape& shape, std::string_view name) {
  return graph.record1(detail::kPlaceholderOp, {}, {dtype, shape}, {},
                       name.empty() ? "Placeholder" : name);
}

Tensor placeholder_with_default(const Tensor& default_value, const Shape& shape,
                                std::string_view name) {
  if (!shape.is_compatible_with(default_value.shape()) &&
      shape.rank() == default_value.shape().rank()) {
    throw ValueError(str("placeholder_with_default: the default ", default_value.shape(),
                         " does not fit ", shape));
  }
  if (shape.rank() != default_value.shape().rank()) {
    throw ValueError(str("placeholder_with_default: the default ", default_value.shape(),
                         " does not fit ", shape));
  }
  const Tensor inputs[] = {default_value};
  return default_value.graph().record1(kPlaceholderWithDefaultOp, inputs,
                                       {default_value.dtype(), shape}, {},
                                       name.empty() ? "PlaceholderWithDefault" : name);
}

Tensor constant(Graph& graph, const Array& value, std::string_view name) {
  return graph.record1(kConstOp, {}, {value.dtype(), value.shape()}, ConstAttrs{value},
                       name.empty() ? "Const" : name);
}

std::optional<Array> constant_value(const Tensor& t) {
  if (!t || t.is_op() || t.op().op != &kConstOp) return std::nullopt;
  return std::any_cast<const ConstAttrs&>(t.op().attrs).value;
}

Tensor scalar(Graph& graph, double value, DType dtype) {
  return constant(graph, Array::full(dtype, Shape{}, value));
}

Tensor identity(const Tensor& x, std::string_view name) {
  const Tensor inputs[] = {x};
  return x.graph().record1(kIdentityOp, inputs, {x.dtype(), x.shape()}, {},
                           name.empty() ? "Identity" : name);
}

Tensor add_n(std::span<const Tensor> xs, std::string_view name) {
  if (xs.empty()) throw ValueError("add_n: needs at least one tensor");
  if (xs.size() == 1) return xs.front();
  Shape shape = xs.front().shape();
  for (std::size_t i = 1; i < xs.size(); ++i) {
    if (xs[i].dtype() != xs[0].dtype()) {
      throw ValueError(
          str("add_n: input ", i, " is ", xs[i].dtype(), " but input 0 is ", xs[0].dtype()));
    }
    if (!xs[i].shape().is_compatible_with(shape)) {
      throw ValueError(
          str("add_n: input ", i, " has shape ", xs[i].shape(), " but input 0 has ", shape));
    }
    for (int d = 0; d < shape.rank(); ++d) {
      if (shape[d] < 0) shape[d] = xs[i].shape()[d];
    }
  }
  if (!is_floating(xs[0].dtype()))
    throw ValueError(str("add_n: ", xs[0].dtype(), " inputs are not supported"));
  return xs.front().graph().record1(kAddNOp, xs, {xs[0].dtype(), shape}, {},
                                    name.empty() ? "AddN" : name);
}

Tensor fill_like(const Tensor& x, double value) {
  const Tensor inputs[] = {x};
  return x.graph().record1(kFillLikeOp, inputs, {x.dtype(), x.shape()}, FillAttrs{value},
                           value == 0 ? "ZerosLike" : (value == 1 ? "OnesLike" : "FillLike"));
}

Tensor zeros_like(const Tensor& x) { return fill_like(x, 0.0); }
Tensor ones_like(const Tensor& x) { return fill_like(x, 1.0); }

Tensor stop_gradient(const Tensor& x, std::string_view name) {
  const Tensor inputs[] = {x};
  return x.graph().record1(kStopGradientOp, inputs, {x.dtype(), x.shape()}, {},
                           name.empty() ? "StopGradient" : name);
}

Tensor no_op(Graph& graph, std::string_view name) {
  return graph.record(kNoOp, {}, {}, {}, name.empty() ? "NoOp" : name).front();
}

Tensor group(std::span<const Tensor> ops, std::string_view name) {
  // Empty Tensors are skipped and a group of nothing is an empty Tensor, so
  // group({train_op, group(graph.get_collection(UPDATE_OPS))}) works for models without updates.
  std::vector<Tensor> present;
  for (const auto& op : ops) {
    if (op) present.push_back(op);
  }
  if (present.empty()) return {};
  const ControlDependencies deps(present);
  return no_op(present.front().graph(), name.empty() ? "group_deps" : name);
}

Tensor group(std::initializer_list<Tensor> ops, std::string_view name) {
  return group(std::span<const Tensor>(ops.begin(), ops.size()), name);
}

Tensor sum_to_shape_of(const Tensor& grad, const Tensor& like) {
  if (grad.shape() == like.shape() && grad.shape().is_fully_defined()) return grad;
  const Tensor inputs[] = {grad, like};
  return grad.graph().record1(kSumToOp, inputs, {grad.dtype(), like.shape()}, {}, "SumToShapeOf");
}

Tensor broadcast_like(const Tensor& x, const Tensor& like) {
  if (x.shape() == like.shape() && x.shape().is_fully_defined()) return x;
  const Tensor inputs[] = {x, like};
  return x.graph().record1(kBroadcastLikeOp, inputs, {x.dtype(), like.shape()}, {},
                           "BroadcastLike");
}

Shape broadcast_static_shape(const char* op, const Shape& a, const Shape& b) {
  const int rank = std::max(a.rank(), b.rank());
  Shape out;
  for (int d = 0; d < rank; ++d) {
    const int da = d - (rank - a.rank());
    const int db = d - (rank - b.rank());
    const std::int64_t x = da >= 0 ? a[da] : 1;
    const std::int64_t y = db >= 0 ? b[db] : 1;
    std::int64_t r = 0;
    if (x == 1) {
      r = y;
    } else if (y == 1) {
      r = x;
    } else if (x < 0) {
      r = y;  // unknown vs known: assume they agree (checked at run time)
    } else if (y < 0 || x == y) {
      r = x;
    } else {
      throw ValueError(
          str(op, ": shapes ", a, " and ", b, " cannot be broadcast (dim ", x, " vs ", y, ")"));
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace ad
