// Batch normalization's fused ops beside the composed formula of normalization.cpp: the training
// forward pass as one node (BatchNormTraining), the hand-written gradient (FusedBatchNormGrad) with
// its own double-backward gradient, and the fused_batch_norm builder that ties them together with
// custom_gradient. The per-channel kernels and the gradient's derivation are in channel_stats.h.
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
#include "autodiff/ops/normalization.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

// Where the named inputs of a batch-norm op sit in its recorded input list; -1 when absent. The
// list is built once by pack(), so kernels and gradients read input(slots.scale), never a
// position computed from which optional inputs are present.
struct Slots {
  int dy = -1;
  int x = -1;
  int scale = -1;
  int offset = -1;
  int mean = -1;
  int variance = -1;
};

class InputList {
 public:
  int add(const Tensor& t) {
    if (!t) return -1;
    tensors_.push_back(t);
    return static_cast<int>(tensors_.size()) - 1;
  }
  [[nodiscard]] const std::vector<Tensor>& tensors() const { return tensors_; }

 private:
  std::vector<Tensor> tensors_;
};

Tensor at(const std::vector<Tensor>& in, int slot) {
  return slot < 0 ? Tensor() : in[static_cast<std::size_t>(slot)];
}
const Array* at(KernelContext& ctx, int slot) { return slot < 0 ? nullptr : &ctx.input(slot); }
template <class T>
const T* data_or_null(const Array* a) {
  return a ? a->data<T>().data() : nullptr;
}

// ---- FusedBatchNormGrad -------------------------------------------------------------------------

struct FusedGradAttrs {
  double epsilon;
  std::vector<int> reduction_axes;
  bool training;
  Slots slots;  // dy, x, scale (optional), mean, variance
};

// Checks that the per-channel inputs fit x; returns the statistics shape.
Shape check_grad_inputs(KernelContext& ctx, const FusedGradAttrs& attrs) {
  const Array& dy = ctx.input(attrs.slots.dy);
  const Array& x = ctx.input(attrs.slots.x);
  if (!(dy.shape() == x.shape()))
    ctx.fail(str("dy has shape ", dy.shape(), " but x has ", x.shape()));
  const Shape stat_shape = detail::reduced_shape(x.shape(), attrs.reduction_axes);
  for (const int slot : {attrs.slots.mean, attrs.slots.variance, attrs.slots.scale}) {
    const Array* p = at(ctx, slot);
    if (p != nullptr && p->size() != stat_shape.num_elements()) {
      ctx.fail(str("statistics of shape ", p->shape(), " do not fit x of shape ", x.shape(),
                   " (expected ", stat_shape, ")"));
    }
  }
  return stat_shape;
}

// Pass 1 gathers sum dy and sum dy (x - mu) per channel, the coefficients follow (derivation
// above detail::grad_coefficients), pass 2 writes dx = a dy + k x + b.
template <class T>
void fused_grad(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<FusedGradAttrs>();
  const Shape stat_shape = check_grad_inputs(ctx, attrs);
  const Array& x = ctx.input(attrs.slots.x);
  const std::int64_t C = stat_shape.num_elements();
  Array& dx = ctx.allocate_output(0, x.shape());
  T* dscale = ctx.allocate_output(1, stat_shape).mutable_data<T>().data();
  T* doffset = ctx.allocate_output(2, stat_shape).mutable_data<T>().data();
  if (x.size() == 0) {
    std::fill_n(dscale, C, T{0});
    std::fill_n(doffset, C, T{0});
    return;
  }
  const T* xp = x.data<T>().data();
  const T* gp = ctx.input(attrs.slots.dy).data<T>().data();
  const detail::ChannelParams<T> params{data_or_null<T>(at(ctx, attrs.slots.scale)),
                                        data_or_null<T>(at(ctx, attrs.slots.mean)),
                                        data_or_null<T>(at(ctx, attrs.slots.variance))};
  thread_local std::vector<double> sums;
  sums.assign(static_cast<std::size_t>(2 * C), 0.0);
  thread_local std::vector<T> coefficients;
  coefficients.resize(static_cast<std::size_t>(3 * C));
  T* a = coefficients.data();
  const detail::GradCoefficients<T> out{dscale, doffset, a, a + C, a + 2 * C};
  const auto layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  const auto channel = layout.contiguous ? std::vector<std::int64_t>{}
                                         : detail::channel_index(x.shape(), attrs.reduction_axes);
  detail::grad_sums(layout, channel, xp, gp, params.mean, x.size(), sums.data(), sums.data() + C);
  detail::grad_coefficients(C, static_cast<double>(x.size() / C), sums.data(), sums.data() + C,
                            params, attrs.epsilon, attrs.training, out);
  // In inference k = b = 0: the contiguous kernels skip the k x term.
  const bool with_k = attrs.training || !layout.contiguous;
  detail::affine(layout, channel, gp, out.a, xp, with_k ? out.k : nullptr, out.b, x.size(),
                 dx.mutable_data<T>().data());
}

void fused_grad_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(ctx.attrs<FusedGradAttrs>().slots.x).dtype(),
                    [&](auto tag) { fused_grad<decltype(tag)>(ctx); });
}

// Double backward: the first-order formulas, re-expressed with ordinary ops (in training, mean
// and variance recomputed from x without stop_gradient, so the result is exact), then
// differentiated with the incoming gradients of dx, dscale and doffset.
FusedBatchNormGrad composed_grad(const FusedBatchNormGradInputs& in, const FusedGradAttrs& attrs) {
  const auto& axes = attrs.reduction_axes;
  // Means and sums over the reduction axes; over no axes (one element per channel) they are the
  // tensor itself.
  auto mean_over = [&](const Tensor& t) { return axes.empty() ? t : reduce_mean(t, axes, true); };
  auto sum_over = [&](const Tensor& t) { return axes.empty() ? t : reduce_sum(t, axes, true); };
  Tensor mean = in.mean;
  Tensor variance = in.variance;
  if (attrs.training) {
    mean = mean_over(in.x);
    variance = mean_over(square(in.x - mean));
  }
  const Tensor s = rsqrt(variance + attrs.epsilon);
  const Tensor x_hat = (in.x - mean) * s;
  const Tensor doffset = sum_over(in.dy);
  const Tensor dscale = sum_over(in.dy * x_hat);
  const Tensor gamma_s = in.scale ? in.scale * s : s;
  const Tensor dx = attrs.training
                        ? gamma_s * (in.dy - mean_over(in.dy) - x_hat * mean_over(in.dy * x_hat))
                        : in.dy * gamma_s;
  return {dx, dscale, doffset};
}

// The formulas read fresh identities of the inputs: differentiated with respect to those, no path
// runs through the nodes that made the inputs (dy often depends on x), which the tape already
// follows from each input and would otherwise count twice.
void fused_grad_gradient(GradContext& g) {
  const auto& attrs = g.attrs<FusedGradAttrs>();
  const Slots& slots = attrs.slots;
  std::vector<Tensor> fresh(static_cast<std::size_t>(g.num_inputs()));
  for (int i = 0; i < g.num_inputs(); ++i)
    fresh[static_cast<std::size_t>(i)] = identity(g.input(i));
  auto input = [&](int slot) {
    return slot < 0 ? Tensor() : fresh[static_cast<std::size_t>(slot)];
  };
  const FusedBatchNormGradInputs in{input(slots.dy), input(slots.x), input(slots.scale),
                                    input(slots.mean), input(slots.variance)};
  const FusedBatchNormGrad firsts = composed_grad(in, attrs);
  std::vector<Tensor> ys;
  std::vector<Tensor> grad_ys;
  const Tensor outputs[] = {firsts.dx, firsts.dscale, firsts.doffset};
  for (int i = 0; i < 3; ++i) {
    if (g.grad_output(i)) {
      ys.push_back(outputs[i]);
      grad_ys.push_back(g.grad_output(i));
    }
  }
  // Targets in input order; in training the statistics inputs are not differentiated (the
  // composition recomputes them from x).
  std::vector<int> target_slots{slots.dy, slots.x};
  if (in.scale) target_slots.push_back(slots.scale);
  if (!attrs.training) target_slots.insert(target_slots.end(), {slots.mean, slots.variance});
  std::vector<GradTarget> targets;
  for (const int slot : target_slots) targets.emplace_back(input(slot));
  const auto grads = gradients(ys, targets, grad_ys);
  for (std::size_t i = 0; i < target_slots.size(); ++i) g.set(target_slots[i], grads[i]);
}

const OpDef kFusedBatchNormGradOp{
    .name = "FusedBatchNormGrad", .kernel = fused_grad_kernel, .gradient = fused_grad_gradient};

// ---- BatchNormTraining --------------------------------------------------------------------------

// Training forward in one node: per-channel batch moments, then y = x * inv + shift with TF's
// nn.batch_normalization op order in T (inv = rsqrt(variance + epsilon) * scale,
// shift = offset - mean * inv), so the outputs are bitwise those of ChannelMoments followed by
// those ops and ChannelAffine, without their intermediate nodes. It has no gradient of its own:
// fused_batch_norm wraps it in a custom gradient.
struct NormalizeAttrs {
  double epsilon;
  std::vector<int> reduction_axes;
  Slots slots;  // x, scale and offset (both optional)
};

template <class T>
void normalize_train(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<NormalizeAttrs>();
  const Array& x = ctx.input(attrs.slots.x);
  const Shape stat_shape = detail::reduced_shape(x.shape(), attrs.reduction_axes);
  const std::int64_t C = stat_shape.num_elements();
  const Array* scale = at(ctx, attrs.slots.scale);
  const Array* offset = at(ctx, attrs.slots.offset);
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
  const T* gamma = data_or_null<T>(scale);
  const T* beta = data_or_null<T>(offset);
  const T eps = static_cast<T>(attrs.epsilon);
  const auto layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  const auto channel = layout.contiguous ? std::vector<std::int64_t>{}
                                         : detail::channel_index(x.shape(), attrs.reduction_axes);
  thread_local std::vector<detail::MomentStats> stats;
  stats.resize(static_cast<std::size_t>(C));
  detail::statistics(layout, channel, xp, stats.data(), C);
  detail::finish_moments(stats.data(), C, m, v);
  thread_local std::vector<T> coefficients;
  coefficients.resize(static_cast<std::size_t>(2 * C));
  T* inv = coefficients.data();
  T* shift = inv + C;
  for (std::int64_t c = 0; c < C; ++c) {
    T i = T{1} / std::sqrt(v[c] + eps);
    if (gamma) i = i * gamma[c];
    inv[c] = i;
    shift[c] = beta ? beta[c] - m[c] * i : -(m[c] * i);
  }
  detail::affine<T>(layout, channel, xp, inv, nullptr, nullptr, shift, x.size(),
                    out.mutable_data<T>().data());
}

void normalize_train_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(), [&](auto tag) { normalize_train<decltype(tag)>(ctx); });
}

const OpDef kNormalizeTrainOp{.name = "BatchNormTraining", .kernel = normalize_train_kernel};

}  // namespace

FusedBatchNormGrad fused_batch_norm_grad(const FusedBatchNormGradInputs& in, double epsilon,
                                         const std::vector<int>& reduction_axes, bool training) {
  const Tensor& x = in.x;
  if (!in.dy || !x || !in.mean || !in.variance)
    throw ValueError("fused_batch_norm_grad: an input is an empty Tensor");
  if (!is_floating(x.dtype())) {
    throw ValueError(str("fused_batch_norm_grad: x '", x.name(), "' is ", x.dtype(),
                         "; expected float32 or float64"));
  }
  InputList inputs;
  Slots slots;
  slots.dy = inputs.add(in.dy);
  slots.x = inputs.add(x);
  slots.scale = inputs.add(in.scale);
  slots.mean = inputs.add(in.mean);
  slots.variance = inputs.add(in.variance);
  for (const auto& t : inputs.tensors()) {
    if (t.dtype() != x.dtype()) {
      throw ValueError(
          str("fused_batch_norm_grad: '", t.name(), "' is ", t.dtype(), " but x is ", x.dtype()));
    }
  }
  const std::vector<int> axes =
      detail::resolve_channel_axes(reduction_axes, x.shape().rank(), "fused_batch_norm_grad");
  const Shape stat_shape = detail::reduced_shape(x.shape(), axes);
  const Shape& mean_shape = in.mean.shape();
  if (mean_shape.rank() != stat_shape.rank() || !mean_shape.is_compatible_with(stat_shape)) {
    throw ValueError(str("fused_batch_norm_grad: statistics of shape ", mean_shape,
                         " do not fit x of shape ", x.shape(),
                         " reduced over its batch axes (expected ", stat_shape, ")"));
  }
  auto outs =
      x.graph().record(kFusedBatchNormGradOp, inputs.tensors(),
                       {{x.dtype(), x.shape()}, {x.dtype(), mean_shape}, {x.dtype(), mean_shape}},
                       FusedGradAttrs{epsilon, axes, training, slots});
  return {outs[0], outs[1], outs[2]};
}

FusedBatchNormGrad fused_batch_norm_grad(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                         const Tensor& mean, const Tensor& variance, double epsilon,
                                         const std::vector<int>& reduction_axes, bool training) {
  return fused_batch_norm_grad({dy, x, scale, mean, variance}, epsilon, reduction_axes, training);
}

namespace nn {

namespace {

Tensor to_shape(const Tensor& t, const Shape& shape) {
  return !t || t.shape() == shape ? t : reshape(t, shape);
}

// ValueError unless x is floating and every present per-channel input has x's dtype and holds
// the `stat_shape` per-channel values.
void check_fused_inputs(const FusedBatchNormInputs& in, const Shape& stat_shape) {
  const Tensor& x = in.x;
  if (!is_floating(x.dtype())) {
    throw ValueError(str("fused_batch_norm: x '", x.name(), "' is ", x.dtype(),
                         "; expected float32 or float64"));
  }
  for (const Tensor* t : {&in.scale, &in.offset, &in.mean, &in.variance}) {
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
}

// The configuration both custom gradients capture: the resolved reduction axes, the statistics
// shape, epsilon and where each named input sits in the custom_gradient input list.
struct FusedConfig {
  std::vector<int> axes;
  Shape stat_shape;
  double epsilon;
  Slots slots;
};

// The gradient of the (scale, offset) inputs from the fused gradient's results, in their own
// shapes.
void set_parameter_grads(const FusedConfig& f, const std::vector<Tensor>& in,
                         const FusedBatchNormGrad& r, std::vector<Tensor>& grads) {
  if (f.slots.scale >= 0) grads[f.slots.scale] = to_shape(r.dscale, in[f.slots.scale].shape());
  if (f.slots.offset >= 0) grads[f.slots.offset] = to_shape(r.doffset, in[f.slots.offset].shape());
}

// Training: one BatchNormTraining node forward; backward, fused_batch_norm_grad for y plus the
// direct terms of gradients arriving at the batch statistics themselves (a loss on them):
// d mean/dx = 1/N, d var/dx = 2 (x - mean)/N.
FusedBatchNorm train(const FusedConfig& f, const std::vector<Tensor>& inputs, DType dtype,
                     const Shape& x_shape) {
  const auto outs = custom_gradient(
      inputs,
      [&](const std::vector<Tensor>& in) {
        return in[0].graph().record(
            kNormalizeTrainOp, in, {{dtype, x_shape}, {dtype, f.stat_shape}, {dtype, f.stat_shape}},
            NormalizeAttrs{f.epsilon, f.axes, f.slots}, "BatchNormTraining");
      },
      [f](const std::vector<Tensor>& in, const std::vector<Tensor>& out,
          const std::vector<Tensor>& dys) {
        const Tensor& x = in[static_cast<std::size_t>(f.slots.x)];
        std::vector<Tensor> grads(in.size());
        if (dys[0]) {
          const Shape& stats = out[1].shape();
          const auto r = fused_batch_norm_grad(
              {dys[0], x, to_shape(at(in, f.slots.scale), stats), out[1], out[2]}, f.epsilon,
              f.axes, true);
          grads[0] = r.dx;
          set_parameter_grads(f, in, r, grads);
        }
        if (dys[1] || dys[2]) {
          Tensor extra = broadcast_like(dys[1] ? dys[1] : zeros_like(out[1]), x);
          if (dys[2]) extra = extra + dys[2] * (x - out[1]) * 2.0;
          const Tensor n = cast(size(x), x.dtype()) / cast(size(out[1]), x.dtype());
          extra = extra / n;
          grads[0] = grads[0] ? grads[0] + extra : extra;
        }
        return grads;
      });
  return {outs[0], outs[1], outs[2]};
}

// Inference: the composed formula forward; backward, fused_batch_norm_grad for x, scale and offset
// and the closed forms for the statistics: d/dmean = -gamma s sum(dy) = -gamma s doffset,
// d/dvariance = -1/2 gamma s^2 dscale.
Tensor infer(const FusedConfig& f, const std::vector<Tensor>& inputs) {
  const auto y = custom_gradient(
      inputs,
      [&](const std::vector<Tensor>& in) {
        const Slots& s = f.slots;
        return std::vector<Tensor>{normalize_channels(
            in[0], to_shape(at(in, s.mean), f.stat_shape),
            to_shape(at(in, s.variance), f.stat_shape), to_shape(at(in, s.scale), f.stat_shape),
            to_shape(at(in, s.offset), f.stat_shape), f.epsilon, f.axes)};
      },
      [f](const std::vector<Tensor>& in, const std::vector<Tensor>&,
          const std::vector<Tensor>& dys) {
        std::vector<Tensor> grads(in.size());
        if (!dys[0]) return grads;
        const Tensor scale = to_shape(at(in, f.slots.scale), f.stat_shape);
        const Tensor mean = to_shape(at(in, f.slots.mean), f.stat_shape);
        const Tensor variance = to_shape(at(in, f.slots.variance), f.stat_shape);
        const auto r =
            fused_batch_norm_grad({dys[0], in[0], scale, mean, variance}, f.epsilon, f.axes, false);
        grads[0] = r.dx;
        set_parameter_grads(f, in, r, grads);
        const Tensor s = rsqrt(variance + f.epsilon);
        const Tensor gamma_s = scale ? scale * s : s;
        const auto mean_slot = static_cast<std::size_t>(f.slots.mean);
        const auto variance_slot = static_cast<std::size_t>(f.slots.variance);
        grads[mean_slot] = to_shape(-(gamma_s * r.doffset), in[mean_slot].shape());
        grads[variance_slot] = to_shape(gamma_s * s * r.dscale * -0.5, in[variance_slot].shape());
        return grads;
      });
  return y.front();
}

}  // namespace

FusedBatchNorm fused_batch_norm(const FusedBatchNormInputs& in, double epsilon,
                                const std::vector<int>& reduction_axes, bool training) {
  const Tensor& x = in.x;
  if (!x) throw ValueError("fused_batch_norm: x is an empty Tensor");
  if (!training && (!in.mean || !in.variance)) {
    throw ValueError("fused_batch_norm: inference needs the population mean and variance");
  }
  FusedConfig f;
  f.axes = detail::resolve_channel_axes(reduction_axes, x.shape().rank(), "fused_batch_norm");
  // Per-channel inputs may have any shape with the channel count (e.g. [C] for the last axis);
  // the gradient op works in the keepdims statistics shape, and results are reshaped back.
  f.stat_shape = detail::reduced_shape(x.shape(), f.axes);
  f.epsilon = epsilon;
  check_fused_inputs(in, f.stat_shape);
  InputList inputs;
  f.slots.x = inputs.add(x);
  f.slots.scale = inputs.add(in.scale);
  f.slots.offset = inputs.add(in.offset);
  if (training) return train(f, inputs.tensors(), x.dtype(), x.shape());
  f.slots.mean = inputs.add(in.mean);
  f.slots.variance = inputs.add(in.variance);
  return {infer(f, inputs.tensors()), in.mean, in.variance};
}

FusedBatchNorm fused_batch_norm(const Tensor& x, const Tensor& scale, const Tensor& offset,
                                const Tensor& mean, const Tensor& variance, double epsilon,
                                const std::vector<int>& reduction_axes, bool training) {
  return fused_batch_norm({x, scale, offset, mean, variance}, epsilon, reduction_axes, training);
}

}  // namespace nn

}  // namespace ad
