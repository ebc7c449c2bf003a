// The normalization family's statistics and composed formula: ad::moments, moment_statistics and
// Chan's merge, channel_moments and channel_affine (single-node primitives over the kernels of
// channel_stats.h, each with a gradient recorded as ops), and normalize_channels. The fused ops
// are in fused_batch_norm.cpp.
#include "autodiff/ops/normalization.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/channel_stats.h"
#include "autodiff/ops/internal/layer_norm.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

using detail::reduced_shape;
using detail::resolve_channel_axes;

struct ChannelAttrs {
  std::vector<int> axes;  // reduction axes, sorted
};

// The per-channel statistics of input 0 into a reused buffer; false for an empty input.
template <class T>
const detail::MomentStats* input_statistics(KernelContext& ctx, std::int64_t channels) {
  const auto& axes = ctx.attrs<ChannelAttrs>().axes;
  const Array& x = ctx.input(0);
  if (x.size() == 0) return nullptr;
  const auto layout = detail::channel_layout(x.shape(), axes);
  const auto channel =
      layout.contiguous ? std::vector<std::int64_t>{} : detail::channel_index(x.shape(), axes);
  thread_local std::vector<detail::MomentStats> stats;
  stats.resize(static_cast<std::size_t>(channels));
  detail::statistics(layout, channel, x.data<T>().data(), stats.data(), channels);
  return stats.data();
}

// ---- ChannelMoments: mean and biased variance in x's dtype ------------------------------------

template <class T>
void moments_kernel_typed(KernelContext& ctx) {
  const Shape stat_shape = reduced_shape(ctx.input(0).shape(), ctx.attrs<ChannelAttrs>().axes);
  T* m = ctx.allocate_output(0, stat_shape).mutable_data<T>().data();
  T* v = ctx.allocate_output(1, stat_shape).mutable_data<T>().data();
  const std::int64_t C = stat_shape.num_elements();
  const detail::MomentStats* stats = input_statistics<T>(ctx, C);
  if (stats == nullptr) {
    std::fill_n(m, C, static_cast<T>(NAN));
    std::fill_n(v, C, static_cast<T>(NAN));
    return;
  }
  detail::finish_moments(stats, C, m, v);
}

void moments_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(),
                    [&](auto tag) { moments_kernel_typed<decltype(tag)>(ctx); });
}

// d mean/dx = 1/N; d variance/dx = 2 (x - mean)/N, with N the elements per channel at run time.
// `mean` is this op's own output: differentiating dx again reaches x through it as well, which
// gives the exact Hessian (TF's stop_gradient(mean) does not).
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

// ---- MomentStatistics: (count, mean, M2) in Float64 -------------------------------------------

template <class T>
void statistics_kernel_typed(KernelContext& ctx) {
  const Shape stat_shape = reduced_shape(ctx.input(0).shape(), ctx.attrs<ChannelAttrs>().axes);
  double* count = ctx.allocate_output(0, stat_shape).mutable_data<double>().data();
  double* mean = ctx.allocate_output(1, stat_shape).mutable_data<double>().data();
  double* m2 = ctx.allocate_output(2, stat_shape).mutable_data<double>().data();
  const std::int64_t C = stat_shape.num_elements();
  const detail::MomentStats* stats = input_statistics<T>(ctx, C);
  for (std::int64_t c = 0; c < C; ++c) {
    const detail::MomentStats s = stats ? stats[c] : detail::MomentStats{};  // empty: all zero
    count[c] = s.count;
    mean[c] = s.mean;
    m2[c] = s.m2;
  }
}

void statistics_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(),
                    [&](auto tag) { statistics_kernel_typed<decltype(tag)>(ctx); });
}

// d mean/dx = 1/count; d M2/dx = 2 (x - mean), in Float64 and cast back to x's dtype.
void statistics_gradient(GradContext& g) {
  const Tensor x = g.input(0);
  const Tensor wide = cast(x, DType::Float64);
  Tensor dx;
  if (g.grad_output(1)) dx = broadcast_like(g.grad_output(1) / g.output(0), wide);
  if (g.grad_output(2)) {
    const Tensor term = (wide - g.output(1)) * (g.grad_output(2) * 2.0);
    dx = dx ? dx + term : term;
  }
  if (dx) g.set(0, cast(dx, x.dtype()));
}

// ---- ChannelAffine: x * scale + shift per channel ---------------------------------------------

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
  const auto layout = detail::channel_layout(x.shape(), axes);
  const auto channel =
      layout.contiguous ? std::vector<std::int64_t>{} : detail::channel_index(x.shape(), axes);
  detail::affine<T>(layout, channel, x.data<T>().data(), scale.data<T>().data(), nullptr, nullptr,
                    shift.data<T>().data(), x.size(), out.mutable_data<T>().data());
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
const OpDef kStatisticsOp{
    .name = "MomentStatistics", .kernel = statistics_kernel, .gradient = statistics_gradient};
const OpDef kAffineOp{
    .name = "ChannelAffine", .kernel = affine_kernel, .gradient = affine_gradient};

// ValueError naming `op` unless x is a present floating Tensor.
void require_floating_input(const char* op, const Tensor& x) {
  if (!x) throw ValueError(str(op, ": x is an empty Tensor"));
  if (!is_floating(x.dtype())) {
    throw ValueError(str(op, ": '", x.name(), "' is ", x.dtype(), "; expected float32 or float64"));
  }
}

std::vector<Tensor> record_moments(const Tensor& x, const std::vector<int>& resolved) {
  const Shape s = reduced_shape(x.shape(), resolved);
  const Tensor inputs[] = {x};
  return x.graph().record(kMomentsOp, inputs, {{x.dtype(), s}, {x.dtype(), s}},
                          ChannelAttrs{resolved}, "ChannelMoments");
}

// Gradient of normalize with `fused`: dx from fused_batch_norm_grad on dy * scale (gamma folded
// into the upstream gradient, so the kernel runs without a scale), the parameter gradients as
// sums over their broadcast axes, and the direct terms of gradients arriving at the statistics
// (outputs 1 and 2, which the recorded gradient reads again when differentiated a second time):
// d mean/dx = 1/N, d var/dx = 2 (x - mean)/N.
std::vector<Tensor> normalize_gradient(const std::vector<Tensor>& in,
                                       const std::vector<Tensor>& out,
                                       const std::vector<Tensor>& dys, int scale_slot,
                                       int offset_slot, double epsilon,
                                       const std::vector<int>& axes) {
  std::vector<Tensor> grads(in.size());
  const Tensor& x = in[0];
  const Tensor& mean = out[1];
  const Tensor& variance = out[2];
  const Tensor scale = scale_slot < 0 ? Tensor() : in[static_cast<std::size_t>(scale_slot)];
  if (const Tensor& dy = dys[0]) {
    const Tensor dx_hat = scale ? dy * scale : dy;
    grads[0] = fused_batch_norm_grad({dx_hat, x, {}, mean, variance}, epsilon, axes, true).dx;
    if (scale) {
      const Tensor x_hat = (x - mean) * rsqrt(variance + epsilon);
      grads[static_cast<std::size_t>(scale_slot)] = sum_to_shape_of(dy * x_hat, scale);
    }
    if (offset_slot >= 0) {
      const Tensor& offset = in[static_cast<std::size_t>(offset_slot)];
      grads[static_cast<std::size_t>(offset_slot)] = sum_to_shape_of(dy, offset);
    }
  }
  return detail::add_statistics_gradient(x, mean, dys[1], dys[2], std::move(grads));
}

}  // namespace

// Mean and biased variance as one ChannelMoments node (the family's blocked reduction, see
// channel_stats.h), squeezed unless keepdims. `axes` empty means all axes, as for the reductions.
Moments moments(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  if (!x) throw ValueError("moments: the input is an empty Tensor");
  const NameScope scope(x.graph(), "moments");
  const std::string node = scope.name().substr(0, scope.name().size() - 1);
  if (!is_floating(x.dtype())) {
    throw ValueError(str("moments '", node, "': '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; expected float32 or float64 (use ad::cast)"));
  }
  const std::vector<int> resolved = detail::resolve_axes("moments", node, x, axes);
  const auto outs = record_moments(x, resolved);
  if (keepdims) return {outs[0], outs[1]};
  return {detail::squeeze_reduced_dims(outs[0], resolved),
          detail::squeeze_reduced_dims(outs[1], resolved)};
}

namespace detail {

std::vector<Tensor> add_statistics_gradient(const Tensor& x, const Tensor& mean,
                                            const Tensor& dmean, const Tensor& dvariance,
                                            std::vector<Tensor> grads) {
  if (!dmean && !dvariance) return grads;
  Tensor extra = broadcast_like(dmean ? dmean : zeros_like(mean), x);
  if (dvariance) extra = extra + dvariance * (x - mean) * 2.0;
  extra = extra / (cast(size(x), x.dtype()) / cast(size(mean), x.dtype()));
  grads[0] = grads[0] ? grads[0] + extra : extra;
  return grads;
}

Tensor centered_variance(const Tensor& x, const Tensor& centre, const std::vector<int>& axes,
                         bool keepdims) {
  const std::string node = x ? x.graph().unique_name("CenteredVariance", false) : "";
  if (!x || !is_floating(x.dtype())) {
    throw ValueError(str("centered_variance '", node, "': the input must be float32 or float64"));
  }
  const std::vector<int> resolved = resolve_axes("centered_variance", node, x, axes);
  const Shape kept_shape = reduced_shape(x.shape(), resolved);
  if (!centre || centre.dtype() != x.dtype() || !centre.shape().is_compatible_with(kept_shape)) {
    throw ValueError(str("centered_variance '", node, "': the centre must be ", x.dtype(),
                         kept_shape, " (the keepdims mean of x ", x.shape(), ")"));
  }
  const Tensor variance = record_moments(x, resolved)[1];
  return keepdims ? variance : squeeze_reduced_dims(variance, resolved);
}

}  // namespace detail

namespace nn {

MomentStatistics moment_statistics(const Tensor& x, const std::vector<int>& reduction_axes) {
  require_floating_input("moment_statistics", x);
  const auto resolved = resolve_channel_axes(reduction_axes, x.shape().rank(), "moment_statistics");
  const Shape s = reduced_shape(x.shape(), resolved);
  const Tensor inputs[] = {x};
  const auto outs = x.graph().record(
      kStatisticsOp, inputs, {{DType::Float64, s}, {DType::Float64, s}, {DType::Float64, s}},
      ChannelAttrs{resolved}, "MomentStatistics");
  return {outs[0], outs[1], outs[2]};
}

MomentStatistics merge_moment_statistics(const MomentStatistics& stacked) {
  if (!stacked.count || !stacked.mean || !stacked.m2)
    throw ValueError("merge_moment_statistics: a statistic is an empty Tensor");
  for (const Tensor* t : {&stacked.count, &stacked.mean, &stacked.m2}) {
    if (t->dtype() != DType::Float64 || t->shape().rank() == 0) {
      throw ValueError(str("merge_moment_statistics: '", t->name(), "' is ", t->dtype(), t->shape(),
                           "; expected float64 partials stacked on axis 0"));
    }
  }
  const Tensor count = reduce_sum(stacked.count, {0});
  const Tensor mean = reduce_sum(stacked.count * stacked.mean, {0}) / count;
  const Tensor spread = stacked.count * square(stacked.mean - mean);
  return {count, mean, reduce_sum(stacked.m2 + spread, {0})};
}

std::pair<Tensor, Tensor> moments_from_statistics(const MomentStatistics& statistics, DType dtype) {
  if (!is_floating(dtype))
    throw ValueError(str("moments_from_statistics: dtype ", dtype, " is not float32 or float64"));
  const Tensor variance = statistics.m2 / statistics.count;
  if (dtype == DType::Float64) return {statistics.mean, variance};
  return {cast(statistics.mean, dtype), cast(variance, dtype)};
}

std::pair<Tensor, Tensor> channel_moments(const Tensor& x, const std::vector<int>& reduction_axes) {
  require_floating_input("channel_moments", x);
  const auto outs =
      record_moments(x, resolve_channel_axes(reduction_axes, x.shape().rank(), "channel_moments"));
  return {outs[0], outs[1]};
}

std::pair<Tensor, Tensor> exact_moments(const Tensor& x, const std::vector<int>& reduction_axes) {
  return channel_moments(x, reduction_axes);
}

Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift,
                      const std::vector<int>& reduction_axes) {
  if (!x || !scale || !shift) throw ValueError("channel_affine: an input is an empty Tensor");
  const auto resolved = resolve_channel_axes(reduction_axes, x.shape().rank(), "channel_affine");
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

Tensor normalize_channels(const Tensor& x, const Tensor& mean, const Tensor& variance,
                          const Tensor& scale, const Tensor& offset, double epsilon,
                          const std::vector<int>& reduction_axes) {
  Tensor inv = rsqrt(variance + epsilon);
  if (scale) inv = inv * scale;
  const Tensor shift = offset ? offset - mean * inv : -(mean * inv);
  return channel_affine(x, inv, shift, reduction_axes);
}

Tensor normalize(const NormalizeInputs& inputs, double epsilon,
                 const std::vector<int>& reduction_axes, bool fused) {
  require_floating_input("normalize", inputs.x);
  const auto axes = resolve_channel_axes(reduction_axes, inputs.x.shape().rank(), "normalize");
  std::vector<Tensor> list{inputs.x};
  int scale_slot = -1;
  int offset_slot = -1;
  if (inputs.scale) {
    scale_slot = static_cast<int>(list.size());
    list.push_back(inputs.scale);
  }
  if (inputs.offset) {
    offset_slot = static_cast<int>(list.size());
    list.push_back(inputs.offset);
  }
  auto forward = [&](const std::vector<Tensor>& in) {
    const Tensor scale = scale_slot < 0 ? Tensor() : in[static_cast<std::size_t>(scale_slot)];
    const Tensor offset = offset_slot < 0 ? Tensor() : in[static_cast<std::size_t>(offset_slot)];
    const auto [mean, variance] = channel_moments(in[0], axes);
    return std::vector<Tensor>{batch_normalization(in[0], mean, variance, offset, scale, epsilon),
                               mean, variance};
  };
  if (!fused) return forward(list)[0];
  if (Tensor y = detail::fused_layer_norm(inputs, epsilon, axes)) return y;
  return custom_gradient(list, forward,
                         [=](const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                             const std::vector<Tensor>& dys) {
                           return normalize_gradient(in, out, dys, scale_slot, offset_slot, epsilon,
                                                     axes);
                         })
      .front();
}

}  // namespace nn
}  // namespace ad
