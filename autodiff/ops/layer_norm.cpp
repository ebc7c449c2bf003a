// Layer normalization's fused ops, for the common layout where the statistics are taken over the
// trailing dims of x, viewed as [rows, n] (one statistic per row), and scale/offset vary along
// those n positions. Forward (LayerNorm): the family's channel_statistics per row, then TF's
// nn.batch_normalization op order per element, bitwise equal to nn::normalize's composition.
// Backward (LayerNormGrad): one op computing dx, dscale and doffset, with a gradient of its own.
#include "autodiff/ops/internal/layer_norm.h"

#include <algorithm>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/channel_stats.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

struct RowAttrs {
  double epsilon;
  std::vector<int> axes;  // the normalized (trailing) axes
  std::int64_t n;         // elements per row: the product of their dims
  bool has_scale;
  bool has_offset;
  Shape param_shape;  // of dscale and doffset: scale's shape (else offset's, else [n])
};

template <class T>
const T* data_of(const Array* a) {
  return a ? a->data<T>().data() : nullptr;
}

// y = x * inv + (offset - mean * inv) with inv = rsqrt(variance + epsilon) * scale: the op order
// of nn::batch_normalization, in T, so the result is bitwise the composed path's (whose
// ChannelMoments reduces the same [1, rows, n] layout).
template <class T>
void layer_norm_forward(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<RowAttrs>();
  const Array& x = ctx.input(0);
  const std::int64_t n = attrs.n;
  const std::int64_t rows = x.size() / n;
  const T* gamma = data_of<T>(attrs.has_scale ? &ctx.input(1) : nullptr);
  const T* beta = data_of<T>(attrs.has_offset ? &ctx.input(attrs.has_scale ? 2 : 1) : nullptr);
  const Shape stat_shape = detail::reduced_shape(x.shape(), attrs.axes);
  T* y = ctx.allocate_output(0, x.shape()).mutable_data<T>().data();
  T* mean = ctx.allocate_output(1, stat_shape).mutable_data<T>().data();
  T* variance = ctx.allocate_output(2, stat_shape).mutable_data<T>().data();
  if (x.size() == 0) return;
  const T* xp = x.data<T>().data();
  thread_local std::vector<detail::MomentStats> stats;
  stats.resize(static_cast<std::size_t>(rows));
  detail::channel_statistics(detail::ChannelLayout{1, rows, n, true}, xp, stats.data());
  detail::finish_moments(stats.data(), rows, mean, variance);
  const T eps = static_cast<T>(attrs.epsilon);
  detail::for_each_index(rows, x.size() >= detail::kParallelWork, [&](std::int64_t r) {
    const T rstd = T{1} / std::sqrt(variance[r] + eps);
    const T m = mean[r];
    const T* in = xp + r * n;
    T* out = y + r * n;
#pragma omp simd
    for (std::int64_t j = 0; j < n; ++j) {
      const T inv = gamma ? rstd * gamma[j] : rstd;
      const T shift = beta ? beta[j] - m * inv : -(m * inv);
      out[j] = in[j] * inv + shift;
    }
  });
}

// One row of the gradient: dx and the row's dscale, doffset terms added to `column` (2n values).
// Derivation. Over the row's n elements j, with mean mu, biased variance var,
// s = 1/sqrt(var + epsilon), x_hat_j = (x_j - mu) s, scale g_j and upstream dy_j, let
// e_j = dy_j g_j (the gradient reaching x_hat). As for batch norm with unit scale (see
// detail::grad_coefficients):
//   dx_j = s (e_j - mean(e) - x_hat_j mean(e x_hat))  =  a e_j + k x_j + b,
//   a = s, k = -s^3 sum(e (x - mu)) / n, b = -a sum(e) / n - k mu;
//   dscale_j += dy_j x_hat_j, doffset_j += dy_j.
template <class T>
void layer_norm_grad_row(const T* x, const T* dy, const T* gamma, T mu, T var, double epsilon,
                         std::int64_t n, T* dx, T* column) {
  detail::GradSums sums;
  thread_local std::vector<T> e;
  e.resize(static_cast<std::size_t>(n));
  T* ep = e.data();
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) ep[j] = gamma ? dy[j] * gamma[j] : dy[j];
  detail::run_grad_sums(x, ep, n, mu, sums);
  const double s = 1.0 / std::sqrt(static_cast<double>(var) + epsilon);
  const double inv_n = 1.0 / static_cast<double>(n);
  const double k = -s * s * s * sums.dyx * inv_n;
  const T a_t = static_cast<T>(s);
  const T k_t = static_cast<T>(k);
  const T b_t = static_cast<T>(-s * sums.dy * inv_n - k * static_cast<double>(mu));
  T* col_scale = column;
  T* col_offset = column + n;
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) {
    dx[j] = a_t * ep[j] + k_t * x[j] + b_t;
    col_scale[j] += dy[j] * ((x[j] - mu) * a_t);
    col_offset[j] += dy[j];
  }
}

// Rows are cut into fixed blocks of kRowBlock; a block's column sums accumulate in T and blocks
// are added in double in block order, so results do not depend on the thread count.
template <class T>
void layer_norm_backward(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<RowAttrs>();
  const Array& dy = ctx.input(0);
  const Array& x = ctx.input(1);
  const int stats = attrs.has_scale ? 3 : 2;  // mean, then variance
  if (!(dy.shape() == x.shape()))
    ctx.fail(str("dy has shape ", dy.shape(), " but x has ", x.shape()));
  const std::int64_t n = attrs.n;
  const std::int64_t rows = x.size() / n;
  T* dx = ctx.allocate_output(0, x.shape()).mutable_data<T>().data();
  T* dscale = ctx.allocate_output(1, attrs.param_shape).mutable_data<T>().data();
  T* doffset = ctx.allocate_output(2, attrs.param_shape).mutable_data<T>().data();
  const T* xp = x.data<T>().data();
  const T* gp = dy.data<T>().data();
  const T* gamma = data_of<T>(attrs.has_scale ? &ctx.input(2) : nullptr);
  const T* mean = ctx.input(stats).data<T>().data();
  const T* variance = ctx.input(stats + 1).data<T>().data();
  const std::int64_t blocks = (rows + detail::kRowBlock - 1) / detail::kRowBlock;
  thread_local std::vector<double> partials;
  partials.assign(static_cast<std::size_t>(2 * blocks * n), 0.0);
  double* part = partials.data();
  detail::for_each_index(blocks, x.size() >= detail::kParallelWork, [&](std::int64_t blk) {
    thread_local std::vector<T> column;
    column.assign(static_cast<std::size_t>(2 * n), T{0});
    const std::int64_t end = std::min(rows, (blk + 1) * detail::kRowBlock);
    for (std::int64_t r = blk * detail::kRowBlock; r < end; ++r) {
      layer_norm_grad_row(xp + r * n, gp + r * n, gamma, mean[r], variance[r], attrs.epsilon, n,
                          dx + r * n, column.data());
    }
    double* out = part + 2 * blk * n;
    for (std::int64_t j = 0; j < 2 * n; ++j) out[j] = static_cast<double>(column[j]);
  });
  for (std::int64_t j = 0; j < n; ++j) {
    double ds = 0;
    double db = 0;
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      ds += part[2 * blk * n + j];
      db += part[2 * blk * n + n + j];
    }
    dscale[j] = static_cast<T>(ds);
    doffset[j] = static_cast<T>(db);
  }
}

void forward_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(),
                    [&](auto tag) { layer_norm_forward<decltype(tag)>(ctx); });
}
void backward_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(1).dtype(),
                    [&](auto tag) { layer_norm_backward<decltype(tag)>(ctx); });
}

// The trailing dims of x (those of the normalized axes), as a shape scale broadcasts from.
Shape trailing_shape(const Shape& x, std::size_t count) {
  Shape s;
  for (int d = x.rank() - static_cast<int>(count); d < x.rank(); ++d) s.push_back(x[d]);
  return s;
}

// Double backward: the first-order formulas as ops (mean and variance recomputed from x, so the
// result is exact), differentiated with the incoming gradients of dx, dscale and doffset.
void backward_gradient(GradContext& g) {
  const auto& attrs = g.attrs<RowAttrs>();
  const Tensor dy = g.input(0);
  const Tensor x = g.input(1);
  const Tensor scale = attrs.has_scale ? g.input(2) : Tensor();
  auto mean_over = [&](const Tensor& t) { return reduce_mean(t, attrs.axes, true); };
  const Tensor centred = x - mean_over(x);
  const Tensor s = rsqrt(mean_over(square(centred)) + attrs.epsilon);
  const Tensor x_hat = centred * s;
  const Tensor e = scale ? dy * reshape(scale, trailing_shape(x.shape(), attrs.axes.size())) : dy;
  const Tensor dx = s * (e - mean_over(e) - x_hat * mean_over(e * x_hat));
  std::vector<int> row_axes;
  for (int d = 0; d < attrs.axes.front(); ++d) row_axes.push_back(d);
  auto sum_rows = [&](const Tensor& t) {
    return reshape(row_axes.empty() ? t : reduce_sum(t, row_axes), attrs.param_shape);
  };
  const Tensor firsts[] = {dx, sum_rows(dy * x_hat), sum_rows(dy)};
  std::vector<Tensor> ys;
  std::vector<Tensor> grad_ys;
  for (int i = 0; i < 3; ++i) {
    if (g.grad_output(i)) {
      ys.push_back(firsts[i]);
      grad_ys.push_back(g.grad_output(i));
    }
  }
  std::vector<GradTarget> targets{dy, x};
  if (scale) targets.emplace_back(scale);
  const auto grads = gradients(ys, targets, grad_ys);
  for (std::size_t i = 0; i < targets.size(); ++i) g.set(static_cast<int>(i), grads[i]);
}

const OpDef kLayerNormOp{.name = "LayerNorm", .kernel = forward_kernel};
const OpDef kLayerNormGradOp{
    .name = "LayerNormGrad", .kernel = backward_kernel, .gradient = backward_gradient};

// Whether t (scale or offset) holds one value per normalized position and broadcasts from the
// trailing dims: its shape is x's trailing dims, possibly with leading 1s.
bool fits_rows(const Tensor& t, const Shape& x, int first, std::int64_t n) {
  if (!t) return true;
  const Shape& s = t.shape();
  if (!s.is_fully_defined() || s.num_elements() != n || s.rank() > x.rank()) return false;
  for (int i = 0; i < s.rank(); ++i) {
    const int d = x.rank() - s.rank() + i;
    if (d < first ? s[i] != 1 : s[i] != x[d]) return false;
  }
  return true;
}

}  // namespace

namespace detail {

Tensor fused_layer_norm(const nn::NormalizeInputs& in, double epsilon,
                        const std::vector<int>& axes) {
  const Shape& shape = in.x.shape();
  const int first = axes.empty() ? shape.rank() : axes.front();
  std::int64_t n = 1;
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const int d = first + static_cast<int>(i);
    if (axes[i] != d || shape[d] < 0) return {};
    n *= shape[d];
  }
  if (axes.empty() || axes.back() != shape.rank() - 1 || n == 0) return {};
  for (const Tensor* t : {&in.scale, &in.offset}) {
    if (*t && (t->dtype() != in.x.dtype() || !fits_rows(*t, shape, first, n))) return {};
  }
  const Shape param_shape = in.scale ? in.scale.shape() : in.offset ? in.offset.shape() : Shape{n};
  RowAttrs attrs{epsilon,    axes, n, static_cast<bool>(in.scale), static_cast<bool>(in.offset),
                 param_shape};
  std::vector<Tensor> inputs{in.x};
  if (in.scale) inputs.push_back(in.scale);
  if (in.offset) inputs.push_back(in.offset);
  const Shape stat_shape = reduced_shape(shape, axes);
  const DType dtype = in.x.dtype();
  const auto outs = custom_gradient(
      inputs,
      [&](const std::vector<Tensor>& list) {
        return list[0].graph().record(kLayerNormOp, list,
                                      {{dtype, shape}, {dtype, stat_shape}, {dtype, stat_shape}},
                                      attrs, "LayerNorm");
      },
      [attrs](const std::vector<Tensor>& list, const std::vector<Tensor>& out,
              const std::vector<Tensor>& dys) {
        std::vector<Tensor> grads(list.size());
        const Tensor& x = list[0];
        if (dys[0]) {
          std::vector<Tensor> grad_inputs{dys[0], x};
          if (attrs.has_scale) grad_inputs.push_back(list[1]);
          grad_inputs.insert(grad_inputs.end(), {out[1], out[2]});
          const auto r = x.graph().record(kLayerNormGradOp, grad_inputs,
                                          {{x.dtype(), x.shape()},
                                           {x.dtype(), attrs.param_shape},
                                           {x.dtype(), attrs.param_shape}},
                                          attrs, "LayerNormGrad");
          grads[0] = r[0];
          if (attrs.has_scale) grads[1] = r[1];
          if (attrs.has_offset) {
            const Tensor& offset = list.back();
            grads.back() =
                offset.shape() == attrs.param_shape ? r[2] : reshape(r[2], offset.shape());
          }
        }
        return add_statistics_gradient(x, out[1], dys[1], dys[2], grads);
      });
  return outs[0];
}

}  // namespace detail
}  // namespace ad
