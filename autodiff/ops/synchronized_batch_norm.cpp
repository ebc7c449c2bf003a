// Synchronized batch normalization's fused training path: this process's share of a batch spread
// over several processes normalized with the global statistics, and the hand-written gradient,
// whose two per-channel sums are added over the processes by a caller-given all-reduce
// (ad::distributed registers one; see global_moments_hook.h). The gradient is three nodes:
// BatchNormGradSums (this process's sums), the all-reduce, SyncBatchNormGrad (dx from the global
// sums); each has a gradient of its own, so double backward works.
#include <algorithm>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/channel_stats.h"
#include "autodiff/ops/normalization.h"
#include "autodiff/ops/reduce.h"

namespace ad::nn {

namespace {

struct SyncAttrs {
  double epsilon;
  std::vector<int> reduction_axes;
  Shape stat_shape;  // the keepdims shape of the per-channel values
};

// Inputs of BatchNormGradSums, then of SyncBatchNormGrad (scale last, when present).
enum SumsInput { kSumsDy, kSumsX, kSumsMean };
enum GradInput { kDy, kX, kMean, kVariance, kLocalSums, kGlobalSums, kCount, kScale };

Tensor sum_over(const Tensor& t, const std::vector<int>& axes) {
  return axes.empty() ? t : reduce_sum(t, axes, true);
}

// Row r of a [2, C] Float64 sums tensor in the statistics shape and dtype.
Tensor sums_row(const Tensor& sums, std::int64_t r, const Shape& stat_shape, DType dtype) {
  return cast(reshape(slice(sums, {r, 0}, {1, -1}), stat_shape), dtype);
}

std::int64_t channels_of(KernelContext& ctx, const SyncAttrs& attrs, const Array& dy,
                         const Array& x, const Array& mean) {
  if (!(dy.shape() == x.shape()))
    ctx.fail(str("dy has shape ", dy.shape(), " but x has ", x.shape()));
  const std::int64_t C = attrs.stat_shape.num_elements();
  if (mean.size() != C ||
      !(detail::reduced_shape(x.shape(), attrs.reduction_axes) == attrs.stat_shape)) {
    ctx.fail(str("statistics of shape ", mean.shape(), " do not fit x of shape ", x.shape(),
                 " (expected ", attrs.stat_shape, ")"));
  }
  return C;
}

// ---- BatchNormGradSums --------------------------------------------------------------------------

// Output [2, C] in Float64: row 0 holds sum_i dy_i, row 1 sum_i dy_i (x_i - mu) per channel, over
// this process's elements (zeros when it has none).
template <class T>
void grad_sums(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<SyncAttrs>();
  const Array& dy = ctx.input(kSumsDy);
  const Array& x = ctx.input(kSumsX);
  const Array& mean = ctx.input(kSumsMean);
  const std::int64_t C = channels_of(ctx, attrs, dy, x, mean);
  double* out = ctx.allocate_output(0, Shape{2, C}).mutable_data<double>().data();
  std::fill_n(out, 2 * C, 0.0);
  if (x.size() == 0) return;
  const auto layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  const auto channel = layout.contiguous ? std::vector<std::int64_t>{}
                                         : detail::channel_index(x.shape(), attrs.reduction_axes);
  detail::grad_sums(layout, channel, x.data<T>().data(), dy.data<T>().data(), mean.data<T>().data(),
                    x.size(), out, out + C);
}

void grad_sums_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(kSumsX).dtype(), [&](auto tag) { grad_sums<decltype(tag)>(ctx); });
}

// With g0, g1 the incoming gradients of the two rows: d/d dy_i = g0 + g1 (x_i - mu),
// d/d x_i = g1 dy_i, d/d mu = -g1 sum_i dy_i.
void grad_sums_gradient(GradContext& g) {
  const auto& attrs = g.attrs<SyncAttrs>();
  const Tensor dy = g.input(kSumsDy);
  const Tensor x = g.input(kSumsX);
  const Tensor mean = g.input(kSumsMean);
  const Tensor g0 = sums_row(g.grad_output(0), 0, attrs.stat_shape, x.dtype());
  const Tensor g1 = sums_row(g.grad_output(0), 1, attrs.stat_shape, x.dtype());
  g.set(kSumsDy, broadcast_like(g0, x) + g1 * (x - mean));
  g.set(kSumsX, g1 * dy);
  g.set(kSumsMean, -(g1 * sum_over(dy, attrs.reduction_axes)));
}

const OpDef kGradSumsOp{
    .name = "BatchNormGradSums", .kernel = grad_sums_kernel, .gradient = grad_sums_gradient};

// ---- SyncBatchNormGrad --------------------------------------------------------------------------

// The gradient of synchronized batch normalization on process r. The batch is the union of the
// processes' shares; per channel, over the N elements i of the whole batch (N = `count`, the
// global count), mu and var are the global mean and biased variance, s = 1/sqrt(var + epsilon),
// x_hat_i = (x_i - mu) s, y_i = gamma x_hat_i + beta. The objective is the sum of the processes'
// losses, L = sum_r L_r, and dy_i = dL_r/dy_i for the elements i of process r. As in one process,
//   dL/dx_i = gamma s (dy_i - (1/N) sum_j dy_j - x_hat_i (1/N) sum_j dy_j x_hat_j),
// with j running over the whole batch: the two sums are the only global quantities. So process r
// forms its own sums S0_r = sum_{i in r} dy_i and S1_r = sum_{i in r} dy_i (x_i - mu)
// (BatchNormGradSums, in double), the all-reduce adds them in rank order (S0 = sum_r S0_r,
// S1 = sum_r S1_r, bitwise the same on every process), and this kernel writes
//   dx_i = a dy_i + k x_i + b,  a = gamma s,  k = -gamma s^2 (s S1) / N,  b = -a S0 / N - k mu
// for its own elements (detail::grad_coefficients with the global count and sums). gamma and beta
// enter y_i of process r only, so their gradients are this process's sums,
//   dgamma_r = s S1_r,  dbeta_r = S0_r,
// as the composed path gives them; DistributedOptimizer then adds them over the processes.
template <class T>
void sync_grad(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<SyncAttrs>();
  const Array& dy = ctx.input(kDy);
  const Array& x = ctx.input(kX);
  const std::int64_t C = channels_of(ctx, attrs, dy, x, ctx.input(kMean));
  for (const int slot : {kLocalSums, kGlobalSums}) {
    if (ctx.input(slot).size() != 2 * C)
      ctx.fail(str("per-channel sums of shape ", ctx.input(slot).shape(), " for ", C, " channels"));
  }
  const double* local = ctx.input(kLocalSums).data<double>().data();
  const double* global = ctx.input(kGlobalSums).data<double>().data();
  const detail::ChannelParams<T> params{
      ctx.num_inputs() > kScale ? ctx.input(kScale).data<T>().data() : nullptr,
      ctx.input(kMean).data<T>().data(), ctx.input(kVariance).data<T>().data()};
  Array& dx = ctx.allocate_output(0, x.shape());
  T* dscale = ctx.allocate_output(1, attrs.stat_shape).mutable_data<T>().data();
  T* doffset = ctx.allocate_output(2, attrs.stat_shape).mutable_data<T>().data();
  for (std::int64_t c = 0; c < C; ++c) {
    const double s = 1.0 / std::sqrt(static_cast<double>(params.variance[c]) + attrs.epsilon);
    dscale[c] = static_cast<T>(s * local[C + c]);
    doffset[c] = static_cast<T>(local[c]);
  }
  if (x.size() == 0) return;
  thread_local std::vector<T> coefficients;
  coefficients.resize(static_cast<std::size_t>(5 * C));
  T* a = coefficients.data();
  // The first two rows receive the global dgamma and dbeta, which no one needs.
  const detail::GradCoefficients<T> out{a + 3 * C, a + 4 * C, a, a + C, a + 2 * C};
  detail::grad_coefficients(C, ctx.input(kCount).data<double>()[0], global, global + C, params,
                            attrs.epsilon, true, out);
  const auto layout = detail::channel_layout(x.shape(), attrs.reduction_axes);
  const auto channel = layout.contiguous ? std::vector<std::int64_t>{}
                                         : detail::channel_index(x.shape(), attrs.reduction_axes);
  detail::affine(layout, channel, dy.data<T>().data(), out.a, x.data<T>().data(), out.k, out.b,
                 x.size(), dx.mutable_data<T>().data());
}

void sync_grad_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(kX).dtype(), [&](auto tag) { sync_grad<decltype(tag)>(ctx); });
}

// Double backward: the kernel's formulas written with ordinary ops of its own inputs, then
// differentiated. The statistics and the sums are inputs here, so their dependence on x and dy
// flows on through their own nodes' gradients (the global moments' merge, the all-reduce,
// BatchNormGradSums) rather than being recomputed. The formulas read fresh identities of the
// inputs: differentiated with respect to those, no path runs through the nodes that made the
// inputs (mean depends on x, for one), which would count those contributions twice.
void sync_grad_gradient(GradContext& g) {
  const auto& attrs = g.attrs<SyncAttrs>();
  std::vector<int> slots{kDy, kX, kMean, kVariance, kLocalSums, kGlobalSums};
  if (g.num_inputs() > kScale) slots.push_back(kScale);
  std::vector<Tensor> in(static_cast<std::size_t>(kScale) + 1);
  std::vector<GradTarget> targets;
  for (const int slot : slots) {
    in[static_cast<std::size_t>(slot)] = identity(g.input(slot));
    targets.emplace_back(in[static_cast<std::size_t>(slot)]);
  }
  const DType dtype = in[kX].dtype();
  const Tensor s = rsqrt(in[kVariance] + attrs.epsilon);
  const Tensor n = cast(g.input(kCount), dtype);
  const Tensor global_dy = sums_row(in[kGlobalSums], 0, attrs.stat_shape, dtype);
  const Tensor global_dyx = sums_row(in[kGlobalSums], 1, attrs.stat_shape, dtype);
  const Tensor gamma_s = in[kScale] ? in[kScale] * s : s;
  const Tensor outputs[] = {
      gamma_s * (in[kDy] - global_dy / n - (in[kX] - in[kMean]) * (s * s) * (global_dyx / n)),
      s * sums_row(in[kLocalSums], 1, attrs.stat_shape, dtype),
      sums_row(in[kLocalSums], 0, attrs.stat_shape, dtype)};
  std::vector<Tensor> ys;
  std::vector<Tensor> grad_ys;
  for (int i = 0; i < 3; ++i) {
    if (g.grad_output(i)) {
      ys.push_back(outputs[i]);
      grad_ys.push_back(g.grad_output(i));
    }
  }
  const auto grads = gradients(ys, targets, grad_ys);
  for (std::size_t i = 0; i < slots.size(); ++i) g.set(slots[i], grads[i]);
}

const OpDef kSyncGradOp{
    .name = "SyncBatchNormGrad", .kernel = sync_grad_kernel, .gradient = sync_grad_gradient};

// ---- the builder --------------------------------------------------------------------------------

Tensor to_shape(const Tensor& t, const Shape& shape) {
  return !t || t.shape() == shape ? t : reshape(t, shape);
}

void check_inputs(const SynchronizedBatchNormInputs& in, const Shape& stat_shape,
                  const GlobalSumFn& global_sum) {
  const Tensor& x = in.x;
  if (!x || !in.mean || !in.variance || !in.count)
    throw ValueError("synchronized_batch_norm: x, mean, variance and count are required");
  if (!global_sum) throw ValueError("synchronized_batch_norm: global_sum is an empty function");
  if (!is_floating(x.dtype())) {
    throw ValueError(str("synchronized_batch_norm: x '", x.name(), "' is ", x.dtype(),
                         "; expected float32 or float64"));
  }
  if (in.count.dtype() != DType::Float64 || in.count.shape().rank() != 0) {
    throw ValueError(str("synchronized_batch_norm: count '", in.count.name(), "' is ",
                         in.count.dtype(), in.count.shape(), "; expected a float64 scalar"));
  }
  if (!stat_shape.is_fully_defined()) {
    throw ValueError(str("synchronized_batch_norm: x '", x.name(), "' of shape ", x.shape(),
                         " has undefined channel dims"));
  }
  for (const Tensor* t : {&in.scale, &in.offset, &in.mean, &in.variance}) {
    if (!*t) continue;
    if (t->dtype() != x.dtype() || t->shape().num_elements() != stat_shape.num_elements()) {
      throw ValueError(str("synchronized_batch_norm: '", t->name(), "' is ", t->dtype(), t->shape(),
                           ", which does not hold the ", stat_shape, " per-channel values of x '",
                           x.name(), "' (", x.dtype(), x.shape(), ")"));
    }
  }
}

}  // namespace

Tensor synchronized_batch_norm(const SynchronizedBatchNormInputs& in, double epsilon,
                               const std::vector<int>& reduction_axes,
                               const GlobalSumFn& global_sum) {
  if (!in.x) throw ValueError("synchronized_batch_norm: x is an empty Tensor");
  const std::vector<int> axes =
      detail::resolve_channel_axes(reduction_axes, in.x.shape().rank(), "synchronized_batch_norm");
  const SyncAttrs attrs{epsilon, axes, detail::reduced_shape(in.x.shape(), axes)};
  check_inputs(in, attrs.stat_shape, global_sum);
  std::vector<Tensor> inputs{in.x, in.mean, in.variance, in.count};
  const int scale_slot = in.scale ? static_cast<int>(inputs.size()) : -1;
  if (in.scale) inputs.push_back(in.scale);
  const int offset_slot = in.offset ? static_cast<int>(inputs.size()) : -1;
  if (in.offset) inputs.push_back(in.offset);
  const auto per_channel = [stat_shape = attrs.stat_shape](const std::vector<Tensor>& list,
                                                           int slot) {
    return slot < 0 ? Tensor() : to_shape(list[static_cast<std::size_t>(slot)], stat_shape);
  };
  const auto forward = [&](const std::vector<Tensor>& list) {
    return std::vector<Tensor>{normalize_channels(
        list[0], per_channel(list, 1), per_channel(list, 2), per_channel(list, scale_slot),
        per_channel(list, offset_slot), epsilon, axes)};
  };
  // No gradient reaches mean, variance or count: dx already holds their dependence on x.
  const auto gradient = [attrs, scale_slot, offset_slot, global_sum, per_channel](
                            const std::vector<Tensor>& list, const std::vector<Tensor>&,
                            const std::vector<Tensor>& dys) {
    std::vector<Tensor> grads(list.size());
    if (!dys[0]) return grads;
    const Tensor& x = list[0];
    const Tensor mean = per_channel(list, 1);
    const Tensor sums_in[] = {dys[0], x, mean};
    const Tensor local = x.graph().record1(
        kGradSumsOp, sums_in, {DType::Float64, Shape{2, attrs.stat_shape.num_elements()}}, attrs,
        "batch_norm_grad_sums");
    const Tensor global = global_sum(local);
    std::vector<Tensor> grad_in{dys[0], x, mean, per_channel(list, 2), local, global, list[3]};
    if (scale_slot >= 0) grad_in.push_back(per_channel(list, scale_slot));
    const auto r = x.graph().record(
        kSyncGradOp, grad_in,
        {{x.dtype(), x.shape()}, {x.dtype(), attrs.stat_shape}, {x.dtype(), attrs.stat_shape}},
        attrs);
    grads[0] = r[0];
    const auto set_param = [&](int slot, const Tensor& value) {
      if (slot >= 0) grads[slot] = to_shape(value, list[static_cast<std::size_t>(slot)].shape());
    };
    set_param(scale_slot, r[1]);
    set_param(offset_slot, r[2]);
    return grads;
  };
  return custom_gradient(inputs, forward, gradient).front();
}

}  // namespace ad::nn
