// The fused batch-norm gradient kernel and its own (double-backward) gradient.
#include "autodiff/ops/fused_batch_norm.h"

#include <algorithm>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/channel_stats.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

struct FusedGradAttrs {
  double epsilon;
  std::vector<int> reduction_axes;
  bool training;
  bool has_scale;
};

// Derivation. Per channel c, over its N elements i, with mean mu, variance var (biased, of x in
// training), s = 1/sqrt(var + epsilon), x_hat_i = (x_i - mu) s, scale gamma, upstream dy_i:
//   doffset = sum_i dy_i
//   dscale  = sum_i dy_i x_hat_i = s * sum_i dy_i (x_i - mu)
// Training (mu and var depend on x):
//   dx_i = gamma s (dy_i - doffset / N - x_hat_i dscale / N)
//        = a dy_i + k x_i + b,
//   with a = gamma s, k = -gamma s^2 dscale / N, b = -a doffset / N - k mu.
// Inference (mu, var are constants): dx_i = gamma s dy_i.
// Pass 1 gathers sum dy and sum dy (x - mu) per channel; pass 2 writes dx.
template <class T>
void fused_grad(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<FusedGradAttrs>();
  const Array& dy = ctx.input(0);
  const Array& x = ctx.input(1);
  const int stats = attrs.has_scale ? 3 : 2;
  const Array* scale = attrs.has_scale ? &ctx.input(2) : nullptr;
  const Array& mean = ctx.input(stats);
  const Array& variance = ctx.input(stats + 1);
  if (!(dy.shape() == x.shape()))
    ctx.fail(str("dy has shape ", dy.shape(), " but x has ", x.shape()));
  const Shape stat_shape = detail::reduced_shape(x.shape(), attrs.reduction_axes);
  const Array* per_channel[] = {&mean, &variance, scale};
  for (const Array* p : per_channel) {
    if (p != nullptr && p->size() != stat_shape.num_elements()) {
      ctx.fail(str("statistics of shape ", p->shape(), " do not fit x of shape ", x.shape(),
                   " (expected ", stat_shape, ")"));
    }
  }
  const detail::ChannelLayout layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  const std::int64_t C = stat_shape.num_elements();
  const std::int64_t per_channel_count = C == 0 ? 0 : x.size() / C;
  Array& dx = ctx.allocate_output(0, x.shape());
  Array& dscale = ctx.allocate_output(1, stat_shape);
  Array& doffset = ctx.allocate_output(2, stat_shape);
  if (x.size() == 0) {
    std::fill_n(dscale.mutable_data<T>().data(), C, T{0});
    std::fill_n(doffset.mutable_data<T>().data(), C, T{0});
    return;
  }
  const T* xp = x.data<T>().data();
  const T* gp = dy.data<T>().data();
  const T* mp = mean.data<T>().data();
  const T* vp = variance.data<T>().data();
  thread_local std::vector<double> sums;
  sums.assign(static_cast<std::size_t>(2 * C), 0.0);
  double* sum_dy = sums.data();
  double* sum_dyx = sum_dy + C;
  thread_local std::vector<T> coefficients;
  coefficients.resize(static_cast<std::size_t>(3 * C));
  T* a = coefficients.data();
  T* k = a + C;
  T* b = k + C;
  T* ds = dscale.mutable_data<T>().data();
  T* dof = doffset.mutable_data<T>().data();
  T* dxp = dx.mutable_data<T>().data();
  const T* scale_p = scale ? scale->data<T>().data() : nullptr;
  const double inv_n = 1.0 / static_cast<double>(per_channel_count);
  // Per channel from its two sums: dscale, doffset and the dx coefficients (a loop without
  // branches, so it vectorizes).
  auto compute_coefficients = [&] {
    const bool training = attrs.training;
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) {
      const double s = 1.0 / std::sqrt(static_cast<double>(vp[c]) + attrs.epsilon);
      const double g = scale_p ? static_cast<double>(scale_p[c]) : 1.0;
      const double d_offset = sum_dy[c];
      const double d_scale = s * sum_dyx[c];
      ds[c] = static_cast<T>(d_scale);
      dof[c] = static_cast<T>(d_offset);
      const double ac = g * s;
      const double kc = training ? -g * s * s * d_scale * inv_n : 0.0;
      a[c] = static_cast<T>(ac);
      k[c] = static_cast<T>(kc);
      b[c] = training ? static_cast<T>(-ac * d_offset * inv_n - kc * static_cast<double>(mp[c]))
                      : T{0};
    }
  };
  std::vector<std::int64_t> channel;
  if (layout.contiguous) {
    detail::channel_grad_sums(layout, xp, gp, mp, sum_dy, sum_dyx);
  } else {
    channel = detail::channel_index(x.shape(), attrs.reduction_axes);
    for (std::int64_t i = 0; i < x.size(); ++i) {
      const auto c = channel[static_cast<std::size_t>(i)];
      sum_dy[c] += static_cast<double>(gp[i]);
      sum_dyx[c] +=
          static_cast<double>(gp[i]) * (static_cast<double>(xp[i]) - static_cast<double>(mp[c]));
    }
  }
  compute_coefficients();
  if (layout.contiguous) {
    detail::channel_affine(layout, gp, a, xp, attrs.training ? k : nullptr, b, dxp);
  } else {
    for (std::int64_t i = 0; i < x.size(); ++i) {
      const auto c = channel[static_cast<std::size_t>(i)];
      dxp[i] = a[c] * gp[i] + k[c] * xp[i] + b[c];
    }
  }
}

void fused_grad_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(1).dtype(), [&](auto tag) { fused_grad<decltype(tag)>(ctx); });
}

// Double backward: the first-order formulas above, re-expressed with ordinary ops (in training,
// mean and variance recomputed from x without stop_gradient, so the result is exact), then
// differentiated with the incoming gradients of dx, dscale and doffset.
void fused_grad_gradient(GradContext& g) {
  const auto& attrs = g.attrs<FusedGradAttrs>();
  const auto& axes = attrs.reduction_axes;
  const Tensor dy = g.input(0);
  const Tensor x = g.input(1);
  const int stats = attrs.has_scale ? 3 : 2;
  const Tensor scale = attrs.has_scale ? g.input(2) : Tensor();
  Tensor mean = g.input(stats);
  Tensor variance = g.input(stats + 1);
  // Means and sums over the reduction axes; over no axes (one element per channel) they are x
  // itself.
  auto mean_over = [&](const Tensor& t) { return axes.empty() ? t : reduce_mean(t, axes, true); };
  auto sum_over = [&](const Tensor& t) { return axes.empty() ? t : reduce_sum(t, axes, true); };
  if (attrs.training) {
    mean = mean_over(x);
    variance = mean_over(square(x - mean));
  }
  const Tensor s = rsqrt(variance + attrs.epsilon);
  const Tensor x_hat = (x - mean) * s;
  const Tensor doffset = sum_over(dy);
  const Tensor dscale = sum_over(dy * x_hat);
  const Tensor gamma_s = scale ? scale * s : s;
  const Tensor dx = attrs.training ? gamma_s * (dy - mean_over(dy) - x_hat * mean_over(dy * x_hat))
                                   : dy * gamma_s;
  std::vector<Tensor> ys;
  std::vector<Tensor> grad_ys;
  const Tensor firsts[] = {dx, dscale, doffset};
  for (int i = 0; i < 3; ++i) {
    if (g.grad_output(i)) {
      ys.push_back(firsts[i]);
      grad_ys.push_back(g.grad_output(i));
    }
  }
  std::vector<GradTarget> targets{dy, x};
  if (scale) targets.emplace_back(scale);
  if (!attrs.training) {
    targets.emplace_back(g.input(stats));
    targets.emplace_back(g.input(stats + 1));
  }
  const auto grads = gradients(ys, targets, grad_ys);
  g.set(0, grads[0]);
  g.set(1, grads[1]);
  std::size_t next = 2;
  if (scale) g.set(2, grads[next++]);
  if (!attrs.training) {
    g.set(stats, grads[next]);
    g.set(stats + 1, grads[next + 1]);
  }
}

// Training forward in one node: per-channel batch moments, then y = x * inv + shift with TF's
// nn.batch_normalization op order in T (inv = rsqrt(variance + epsilon) * scale,
// shift = offset - mean * inv), so the outputs are bitwise those of ChannelMoments followed by
// those ops and ChannelAffine, without their intermediate nodes. It has no gradient of its own:
// fused_batch_norm wraps it in a custom gradient.
struct NormalizeAttrs {
  double epsilon;
  std::vector<int> reduction_axes;
  bool has_scale;
  bool has_offset;
};

template <class T>
void normalize_train(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<NormalizeAttrs>();
  const Array& x = ctx.input(0);
  const Shape stat_shape = detail::reduced_shape(x.shape(), attrs.reduction_axes);
  const std::int64_t C = stat_shape.num_elements();
  const Array* scale = attrs.has_scale ? &ctx.input(1) : nullptr;
  const Array* offset = attrs.has_offset ? &ctx.input(attrs.has_scale ? 2 : 1) : nullptr;
  for (const Array* p : {scale, offset}) {
    if (p != nullptr && p->size() != C) {
      ctx.fail(str("scale/offset of shape ", p->shape(), " do not hold the ", stat_shape,
                   " per-channel values of x ", x.shape()));
    }
  }
  Array& out = ctx.allocate_output(0, x.shape());
  T* m = ctx.allocate_output(1, stat_shape).mutable_data<T>().data();
  T* v = ctx.allocate_output(2, stat_shape).mutable_data<T>().data();
  if (x.size() == 0) {
    std::fill_n(m, C, static_cast<T>(NAN));
    std::fill_n(v, C, static_cast<T>(NAN));
    return;
  }
  const T* xp = x.data<T>().data();
  T* y = out.mutable_data<T>().data();
  const T* gamma = scale ? scale->data<T>().data() : nullptr;
  const T* beta = offset ? offset->data<T>().data() : nullptr;
  const T eps = static_cast<T>(attrs.epsilon);
  thread_local std::vector<T> coefficients;
  coefficients.resize(static_cast<std::size_t>(2 * C));
  T* inv = coefficients.data();
  T* shift = inv + C;
  auto coefficients_for = [&](std::int64_t c) {
    T i = T{1} / std::sqrt(v[c] + eps);
    if (gamma) i = i * gamma[c];
    inv[c] = i;
    shift[c] = beta ? beta[c] - m[c] * i : -(m[c] * i);
  };
  const detail::ChannelLayout layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  if (layout.contiguous) {
    detail::channel_moments(layout, xp, m, v);
    for (std::int64_t c = 0; c < C; ++c) coefficients_for(c);
    detail::channel_affine<T>(layout, xp, inv, nullptr, nullptr, shift, y);
    return;
  }
  const auto channel = detail::channel_index(x.shape(), attrs.reduction_axes);
  detail::indexed_moments(channel, xp, m, v, C);
  for (std::int64_t c = 0; c < C; ++c) coefficients_for(c);
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const auto c = channel[static_cast<std::size_t>(i)];
    y[i] = xp[i] * inv[c] + shift[c];
  }
}

void normalize_train_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(), [&](auto tag) { normalize_train<decltype(tag)>(ctx); });
}

const OpDef kNormalizeTrainOp{.name = "BatchNormTraining", .kernel = normalize_train_kernel};

const OpDef kFusedBatchNormGradOp{
    .name = "FusedBatchNormGrad", .kernel = fused_grad_kernel, .gradient = fused_grad_gradient};

}  // namespace

FusedBatchNormGrad fused_batch_norm_grad(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                         const Tensor& mean, const Tensor& variance, double epsilon,
                                         const std::vector<int>& reduction_axes, bool training) {
  if (!dy || !x || !mean || !variance)
    throw ValueError("fused_batch_norm_grad: an input is an empty Tensor");
  if (!is_floating(x.dtype())) {
    throw ValueError(str("fused_batch_norm_grad: x '", x.name(), "' is ", x.dtype(),
                         "; expected float32 or float64"));
  }
  std::vector<Tensor> inputs{dy, x};
  if (scale) inputs.push_back(scale);
  inputs.push_back(mean);
  inputs.push_back(variance);
  for (const auto& t : inputs) {
    if (t.dtype() != x.dtype()) {
      throw ValueError(
          str("fused_batch_norm_grad: '", t.name(), "' is ", t.dtype(), " but x is ", x.dtype()));
    }
  }
  const std::vector<int> axes =
      detail::resolve_channel_axes(reduction_axes, x.shape().rank(), "fused_batch_norm_grad");
  const Shape stat_shape = detail::reduced_shape(x.shape(), axes);
  if (mean.shape().rank() != stat_shape.rank() || !mean.shape().is_compatible_with(stat_shape)) {
    throw ValueError(str("fused_batch_norm_grad: statistics of shape ", mean.shape(),
                         " do not fit x of shape ", x.shape(),
                         " reduced over its batch axes (expected ", stat_shape, ")"));
  }
  auto outs = x.graph().record(
      kFusedBatchNormGradOp, inputs,
      {{x.dtype(), x.shape()}, {x.dtype(), mean.shape()}, {x.dtype(), mean.shape()}},
      FusedGradAttrs{epsilon, axes, training, static_cast<bool>(scale)});
  return {outs[0], outs[1], outs[2]};
}

namespace nn {

namespace {
// TF's nn.batch_normalization op order, with the last step as one ChannelAffine node:
// inv = rsqrt(variance + epsilon) (* scale); y = x * inv + (offset - mean * inv).
Tensor normalize(const Tensor& x, const Tensor& mean, const Tensor& variance, const Tensor& scale,
                 const Tensor& offset, double epsilon, const std::vector<int>& axes) {
  Tensor inv = rsqrt(variance + epsilon);
  if (scale) inv = inv * scale;
  const Tensor shift = offset ? offset - mean * inv : -(mean * inv);
  return channel_affine(x, inv, shift, axes);
}

Tensor to_shape(const Tensor& t, const Shape& shape) {
  return !t || t.shape() == shape ? t : reshape(t, shape);
}
}  // namespace

std::pair<Tensor, Tensor> exact_moments(const Tensor& x, const std::vector<int>& axes) {
  return channel_moments(x, axes);
}

FusedBatchNorm fused_batch_norm(const Tensor& x, const Tensor& scale, const Tensor& offset,
                                const Tensor& mean, const Tensor& variance, double epsilon,
                                const std::vector<int>& reduction_axes, bool training) {
  if (!x) throw ValueError("fused_batch_norm: x is an empty Tensor");
  if (!training && (!mean || !variance)) {
    throw ValueError("fused_batch_norm: inference needs the population mean and variance");
  }
  const std::vector<int> axes =
      detail::resolve_channel_axes(reduction_axes, x.shape().rank(), "fused_batch_norm");
  // Per-channel inputs may have any shape with the channel count (e.g. [C] for the last axis);
  // the gradient op works in the keepdims statistics shape, and results are reshaped back.
  const Shape stat_shape = detail::reduced_shape(x.shape(), axes);
  if (!is_floating(x.dtype())) {
    throw ValueError(str("fused_batch_norm: x '", x.name(), "' is ", x.dtype(),
                         "; expected float32 or float64"));
  }
  for (const Tensor* t : {&scale, &offset, &mean, &variance}) {
    if (*t && t->dtype() != x.dtype()) {
      throw ValueError(str("fused_batch_norm: '", t->name(), "' is ", t->dtype(), " but x '",
                           x.name(), "' is ", x.dtype()));
    }
    if (*t && !(t->shape() == stat_shape) &&
        (!stat_shape.is_fully_defined() ||
         t->shape().num_elements() != stat_shape.num_elements())) {
      throw ValueError(str("fused_batch_norm: '", t->name(), "' has shape ", t->shape(),
                           ", which does not hold the ", stat_shape, " per-channel values of x ",
                           x.shape()));
    }
  }
  std::vector<Tensor> inputs{x};
  if (scale) inputs.push_back(scale);
  if (offset) inputs.push_back(offset);
  if (!training) {
    inputs.push_back(mean);
    inputs.push_back(variance);
  }
  const bool has_scale = static_cast<bool>(scale);
  const bool has_offset = static_cast<bool>(offset);
  const std::size_t offset_index = has_scale ? 2 : 1;
  if (training) {
    const auto outs = custom_gradient(
        inputs,
        [&](const std::vector<Tensor>& in) {
          return in[0].graph().record(
              kNormalizeTrainOp, in,
              {{x.dtype(), x.shape()}, {x.dtype(), stat_shape}, {x.dtype(), stat_shape}},
              NormalizeAttrs{epsilon, axes, has_scale, has_offset}, "BatchNormTraining");
        },
        [axes, epsilon, has_scale, has_offset, offset_index](const std::vector<Tensor>& in,
                                                             const std::vector<Tensor>& out,
                                                             const std::vector<Tensor>& dys) {
          const Tensor& x_in = in[0];
          std::vector<Tensor> grads(in.size());
          if (dys[0]) {
            const Shape& stats = out[1].shape();
            const auto r =
                fused_batch_norm_grad(dys[0], x_in, has_scale ? to_shape(in[1], stats) : Tensor(),
                                      out[1], out[2], epsilon, axes, true);
            grads[0] = r.dx;
            if (has_scale) grads[1] = to_shape(r.dscale, in[1].shape());
            if (has_offset) grads[offset_index] = to_shape(r.doffset, in[offset_index].shape());
          }
          // Gradients arriving at the batch statistics themselves (a loss on them):
          // d mean/dx = 1/N, d var/dx = 2 (x - mean)/N.
          if (dys[1] || dys[2]) {
            Tensor extra = broadcast_like(dys[1] ? dys[1] : zeros_like(out[1]), x_in);
            if (dys[2]) extra = extra + dys[2] * (x_in - out[1]) * 2.0;
            const Tensor n = cast(size(x_in), x_in.dtype()) / cast(size(out[1]), x_in.dtype());
            extra = extra / n;
            grads[0] = grads[0] ? grads[0] + extra : extra;
          }
          return grads;
        });
    return {outs[0], outs[1], outs[2]};
  }
  const auto y = custom_gradient(
      inputs,
      [&](const std::vector<Tensor>& in) {
        const std::size_t k = in.size();
        return std::vector<Tensor>{normalize(
            in[0], to_shape(in[k - 2], stat_shape), to_shape(in[k - 1], stat_shape),
            has_scale ? to_shape(in[1], stat_shape) : Tensor(),
            has_offset ? to_shape(in[offset_index], stat_shape) : Tensor(), epsilon, axes)};
      },
      [axes, epsilon, has_scale, has_offset, offset_index, stat_shape](
          const std::vector<Tensor>& in, const std::vector<Tensor>&,
          const std::vector<Tensor>& dys) {
        const std::size_t k = in.size();
        std::vector<Tensor> grads(k);
        if (!dys[0]) return grads;
        const Tensor s_scale = has_scale ? to_shape(in[1], stat_shape) : Tensor();
        const Tensor m = to_shape(in[k - 2], stat_shape);
        const Tensor v = to_shape(in[k - 1], stat_shape);
        const auto r = fused_batch_norm_grad(dys[0], in[0], s_scale, m, v, epsilon, axes, false);
        grads[0] = r.dx;
        if (has_scale) grads[1] = to_shape(r.dscale, in[1].shape());
        if (has_offset) grads[offset_index] = to_shape(r.doffset, in[offset_index].shape());
        // d/dmean = -gamma s sum(dy) = -gamma s doffset; d/dvariance = -1/2 gamma s^2 dscale.
        const Tensor s = rsqrt(v + epsilon);
        const Tensor gamma_s = s_scale ? s_scale * s : s;
        grads[k - 2] = to_shape(-(gamma_s * r.doffset), in[k - 2].shape());
        grads[k - 1] = to_shape(gamma_s * s * r.dscale * -0.5, in[k - 1].shape());
        return grads;
      });
  return {y.front(), mean, variance};
}

}  // namespace nn

}  // namespace ad
