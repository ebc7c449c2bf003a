// channel_moments and channel_affine: batch normalization's forward pass as two single-node
// primitives with memory-bound kernels (see channel_stats.h), each with a gradient recorded as ops.
#include <algorithm>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/fused_batch_norm.h"
#include "autodiff/ops/internal/channel_stats.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

struct ChannelAttrs {
  std::vector<int> axes;  // reduction axes, sorted
};

using detail::reduced_shape;
using detail::resolve_channel_axes;

template <class T>
void moments_kernel_typed(KernelContext& ctx) {
  const auto& axes = ctx.attrs<ChannelAttrs>().axes;
  const Array& x = ctx.input(0);
  const Shape stat_shape = reduced_shape(x.shape(), axes);
  Array& mean = ctx.allocate_output(0, stat_shape);
  Array& variance = ctx.allocate_output(1, stat_shape);
  T* m = mean.mutable_data<T>().data();
  T* v = variance.mutable_data<T>().data();
  const T* xp = x.data<T>().data();
  if (x.size() == 0) {
    std::fill_n(m, mean.size(), static_cast<T>(NAN));
    std::fill_n(v, variance.size(), static_cast<T>(NAN));
    return;
  }
  const auto layout = detail::channel_layout(x.shape(), axes);
  if (layout.contiguous) {
    detail::channel_moments(layout, xp, m, v);
    return;
  }
  detail::indexed_moments(detail::channel_index(x.shape(), axes), xp, m, v, mean.size());
}

void moments_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(),
                    [&](auto tag) { moments_kernel_typed<decltype(tag)>(ctx); });
}

// d mean/dx = 1/N; d variance/dx = 2 (x - mean)/N, with N the elements per channel at run time.
void moments_gradient(GradContext& g) {
  const Tensor x = g.input(0);
  const Tensor mean = g.output(0);
  const Tensor dmean = g.grad_output(0);
  const Tensor dvar = g.grad_output(1);
  const Tensor n = cast(size(x), x.dtype()) / cast(size(mean), x.dtype());
  Tensor dx;
  if (dmean) dx = broadcast_like(dmean / n, x);
  if (dvar) {
    const Tensor term = (x - mean) * (dvar * (2.0 / n));
    dx = dx ? dx + term : term;
  }
  g.set(0, dx);
}

template <class T>
void affine_kernel_typed(KernelContext& ctx) {
  const auto& axes = ctx.attrs<ChannelAttrs>().axes;
  const Array& x = ctx.input(0);
  const Array& scale = ctx.input(1);
  const Array& shift = ctx.input(2);
  const Shape stat_shape = reduced_shape(x.shape(), axes);
  if (scale.size() != stat_shape.num_elements() || shift.size() != stat_shape.num_elements()) {
    ctx.fail(str("scale ", scale.shape(), " and shift ", shift.shape(), " must hold the ",
                 stat_shape, " per-channel values of x ", x.shape()));
  }
  Array& out = ctx.allocate_output(0, x.shape());
  const T* xp = x.data<T>().data();
  const T* a = scale.data<T>().data();
  const T* b = shift.data<T>().data();
  T* y = out.mutable_data<T>().data();
  const auto layout = detail::channel_layout(x.shape(), axes);
  if (layout.contiguous) {
    detail::channel_affine<T>(layout, xp, a, nullptr, nullptr, b, y);
    return;
  }
  const auto channel = detail::channel_index(x.shape(), axes);
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const auto c = channel[static_cast<std::size_t>(i)];
    y[i] = xp[i] * a[c] + b[c];
  }
}

void affine_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(),
                    [&](auto tag) { affine_kernel_typed<decltype(tag)>(ctx); });
}

void affine_gradient(GradContext& g) {
  const auto& axes = g.attrs<ChannelAttrs>().axes;
  const Tensor dy = g.grad_output(0);
  auto sum_over = [&](const Tensor& t) { return axes.empty() ? t : reduce_sum(t, axes, true); };
  if (g.wants(0)) g.set(0, dy * g.input(1));
  if (g.wants(1)) g.set(1, reshape(sum_over(dy * g.input(0)), g.input(1).shape()));
  if (g.wants(2)) g.set(2, reshape(sum_over(dy), g.input(2).shape()));
}

const OpDef kMomentsOp{
    .name = "ChannelMoments", .kernel = moments_kernel, .gradient = moments_gradient};
const OpDef kAffineOp{
    .name = "ChannelAffine", .kernel = affine_kernel, .gradient = affine_gradient};

}  // namespace

namespace nn {

std::pair<Tensor, Tensor> channel_moments(const Tensor& x, const std::vector<int>& axes) {
  if (!x) throw ValueError("channel_moments: x is an empty Tensor");
  if (!is_floating(x.dtype())) {
    throw ValueError(
        str("channel_moments: '", x.name(), "' is ", x.dtype(), "; expected float32 or float64"));
  }
  const auto resolved = resolve_channel_axes(axes, x.shape().rank(), "channel_moments");
  const Shape s = reduced_shape(x.shape(), resolved);
  const Tensor inputs[] = {x};
  const auto outs = x.graph().record(kMomentsOp, inputs, {{x.dtype(), s}, {x.dtype(), s}},
                                     ChannelAttrs{resolved}, "ChannelMoments");
  return {outs[0], outs[1]};
}

Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift,
                      const std::vector<int>& axes) {
  if (!x || !scale || !shift) throw ValueError("channel_affine: an input is an empty Tensor");
  const auto resolved = resolve_channel_axes(axes, x.shape().rank(), "channel_affine");
  const Shape s = reduced_shape(x.shape(), resolved);
  for (const Tensor* t : {&scale, &shift}) {
    if (t->dtype() != x.dtype()) {
      throw ValueError(
          str("channel_affine: '", t->name(), "' is ", t->dtype(), " but x is ", x.dtype()));
    }
    if (!(t->shape() == s) &&
        (!s.is_fully_defined() || t->shape().num_elements() != s.num_elements())) {
      throw ValueError(str("channel_affine: '", t->name(), "' has shape ", t->shape(), " but x ",
                           x.shape(), " needs ", s, " per-channel values"));
    }
  }
  const Tensor inputs[] = {x, scale, shift};
  return x.graph().record1(kAffineOp, inputs, {x.dtype(), x.shape()}, ChannelAttrs{resolved},
                           "ChannelAffine");
}

}  // namespace nn
}  // namespace ad
