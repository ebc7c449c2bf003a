// Pooling kernels over "planes": channels_last is N planes of H x W pixels with C interleaved
// channels, channels_first is N * C planes with one channel, so one loop nest serves both formats.
// Planes are independent, so they run in parallel without changing any result.
#include "autodiff/ops/pool.h"

#include <algorithm>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace {

struct PoolAttrs {
  Pool2DParams params;
};

struct PoolGeometry {
  std::int64_t planes = 0, h = 0, w = 0, c = 1, oh = 0, ow = 0;
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0;
  Shape input_shape, output_shape;
  [[nodiscard]] std::int64_t in_plane() const { return h * w * c; }
  [[nodiscard]] std::int64_t out_plane() const { return oh * ow * c; }
  [[nodiscard]] bool parallel() const { return planes * in_plane() >= detail::kParallelElements; }
  // The in-bounds rows [lo, hi) of output row `o` (and likewise columns).
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> rows(std::int64_t o) const {
    const std::int64_t start = o * sh - pt;
    return {std::max<std::int64_t>(start, 0), std::min(start + kh, h)};
  }
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> cols(std::int64_t o) const {
    const std::int64_t start = o * sw - pl;
    return {std::max<std::int64_t>(start, 0), std::min(start + kw, w)};
  }
};

// Runs f(plane) for every plane, across threads only when the work is large.
template <class F>
void for_each_plane(const PoolGeometry& g, F f) {
  detail::for_each_index(g.planes, g.parallel(), f);
}

template <class Fail>
PoolGeometry pool_geometry(const Shape& in, const Pool2DParams& p, Fail fail) {
  if (in.rank() != 4) fail(str("input must have rank 4, got ", in));
  const bool nchw = p.data_format == DataFormat::kChannelsFirst;
  PoolGeometry g;
  const std::int64_t n = in[0];
  const std::int64_t channels = in[nchw ? 1 : 3];
  g.h = in[nchw ? 2 : 1];
  g.w = in[nchw ? 3 : 2];
  g.planes = nchw ? n * channels : n;
  g.c = nchw ? 1 : channels;
  g.kh = p.ksize[0];
  g.kw = p.ksize[1];
  g.sh = p.strides[0];
  g.sw = p.strides[1];
  const ConvWindow wh = conv_window(g.h, g.kh, g.sh, 1, p.padding);
  const ConvWindow ww = conv_window(g.w, g.kw, g.sw, 1, p.padding);
  if ((wh.out == 0 && g.h > 0) || (ww.out == 0 && g.w > 0)) {
    fail(str("the ", g.kh, "x", g.kw, " window does not fit the input ", in,
             " with padding valid; use padding same or a smaller pool_size"));
  }
  g.oh = wh.out;
  g.ow = ww.out;
  g.pt = wh.pad_before;
  g.pl = ww.pad_before;
  g.input_shape = in;
  g.output_shape = nchw ? Shape{n, channels, g.oh, g.ow} : Shape{n, g.oh, g.ow, channels};
  return g;
}

// Offset in its plane of the first maximum of channel `cc` in the window of output (oy, ox).
template <class T>
std::int64_t argmax(const PoolGeometry& g, const T* plane, std::int64_t oy, std::int64_t ox,
                    std::int64_t cc) {
  const auto [y0, y1] = g.rows(oy);
  const auto [x0, x1] = g.cols(ox);
  std::int64_t best = (y0 * g.w + x0) * g.c + cc;
  for (std::int64_t y = y0; y < y1; ++y) {
    for (std::int64_t x = x0; x < x1; ++x) {
      const std::int64_t at = (y * g.w + x) * g.c + cc;
      if (plane[at] > plane[best]) best = at;
    }
  }
  return best;
}

template <class T>
void max_pool(const PoolGeometry& g, const T* x, T* y) {
  for_each_plane(g, [&](std::int64_t p) {
    const T* in = x + p * g.in_plane();
    T* out = y + p * g.out_plane();
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const auto [y0, y1] = g.rows(oy);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const auto [x0, x1] = g.cols(ox);
        T* o = out + (oy * g.ow + ox) * g.c;
        std::copy_n(in + (y0 * g.w + x0) * g.c, g.c, o);
        for (std::int64_t yy = y0; yy < y1; ++yy) {
          for (std::int64_t xx = x0; xx < x1; ++xx) {
            const T* s = in + (yy * g.w + xx) * g.c;
#pragma omp simd
            for (std::int64_t cc = 0; cc < g.c; ++cc) o[cc] = s[cc] > o[cc] ? s[cc] : o[cc];
          }
        }
      }
    }
  });
}

template <class T>
void max_pool_grad(const PoolGeometry& g, const T* x, const T* dy, T* dx) {
  for_each_plane(g, [&](std::int64_t p) {
    const T* in = x + p * g.in_plane();
    const T* grad = dy + p * g.out_plane();
    T* out = dx + p * g.in_plane();
    std::fill_n(out, g.in_plane(), T{0});
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        for (std::int64_t cc = 0; cc < g.c; ++cc) {
          out[argmax(g, in, oy, ox, cc)] += grad[(oy * g.ow + ox) * g.c + cc];
        }
      }
    }
  });
}

template <class T>
void max_pool_grad_grad(const PoolGeometry& g, const T* x, const T* ddx, T* out) {
  for_each_plane(g, [&](std::int64_t p) {
    const T* in = x + p * g.in_plane();
    const T* grad = ddx + p * g.in_plane();
    T* o = out + p * g.out_plane();
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        for (std::int64_t cc = 0; cc < g.c; ++cc) {
          o[(oy * g.ow + ox) * g.c + cc] = grad[argmax(g, in, oy, ox, cc)];
        }
      }
    }
  });
}

// Window sums accumulate in double, so float32 averages of large windows stay accurate.
template <class T>
void avg_pool(const PoolGeometry& g, const T* x, T* y) {
  for_each_plane(g, [&](std::int64_t p) {
    thread_local std::vector<double> sum;
    sum.resize(static_cast<std::size_t>(g.c));
    const T* in = x + p * g.in_plane();
    T* out = y + p * g.out_plane();
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const auto [y0, y1] = g.rows(oy);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const auto [x0, x1] = g.cols(ox);
        std::fill(sum.begin(), sum.end(), 0.0);
        double* acc = sum.data();
        for (std::int64_t yy = y0; yy < y1; ++yy) {
          for (std::int64_t xx = x0; xx < x1; ++xx) {
            const T* s = in + (yy * g.w + xx) * g.c;
#pragma omp simd
            for (std::int64_t cc = 0; cc < g.c; ++cc) acc[cc] += static_cast<double>(s[cc]);
          }
        }
        const double count = static_cast<double>((y1 - y0) * (x1 - x0));
        T* o = out + (oy * g.ow + ox) * g.c;
        for (std::int64_t cc = 0; cc < g.c; ++cc) o[cc] = static_cast<T>(acc[cc] / count);
      }
    }
  });
}

template <class T>
void avg_pool_grad(const PoolGeometry& g, const T* dy, T* dx) {
  for_each_plane(g, [&](std::int64_t p) {
    const T* grad = dy + p * g.out_plane();
    T* out = dx + p * g.in_plane();
    std::fill_n(out, g.in_plane(), T{0});
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const auto [y0, y1] = g.rows(oy);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const auto [x0, x1] = g.cols(ox);
        const T count = static_cast<T>((y1 - y0) * (x1 - x0));
        const T* gr = grad + (oy * g.ow + ox) * g.c;
        for (std::int64_t yy = y0; yy < y1; ++yy) {
          for (std::int64_t xx = x0; xx < x1; ++xx) {
            T* d = out + (yy * g.w + xx) * g.c;
#pragma omp simd
            for (std::int64_t cc = 0; cc < g.c; ++cc) d[cc] += gr[cc] / count;
          }
        }
      }
    }
  });
}

PoolGeometry runtime_geometry(const KernelContext& ctx, const Shape& in) {
  return pool_geometry(in, ctx.attrs<PoolAttrs>().params,
                       [&ctx](const std::string& what) { ctx.fail(what); });
}

void require_shape(const KernelContext& ctx, const Array& a, const Shape& expected,
                   const char* what) {
  if (a.shape() != expected) {
    ctx.fail(str(what, " is ", a.shape(), " but the pooling needs ", expected));
  }
}

void max_pool_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const PoolGeometry g = runtime_geometry(ctx, x.shape());
  Array& y = ctx.allocate_output(0, g.output_shape);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool<T>(g, x.data<T>().data(), y.mutable_data<T>().data());
  });
}

void max_pool_grad_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const Array& dy = ctx.input(1);
  const PoolGeometry g = runtime_geometry(ctx, x.shape());
  require_shape(ctx, dy, g.output_shape, "grad");
  Array& dx = ctx.allocate_output(0, x.shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool_grad<T>(g, x.data<T>().data(), dy.data<T>().data(), dx.mutable_data<T>().data());
  });
}

void max_pool_grad_grad_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const Array& ddx = ctx.input(1);
  const PoolGeometry g = runtime_geometry(ctx, x.shape());
  require_shape(ctx, ddx, x.shape(), "grad_grad");
  Array& out = ctx.allocate_output(0, g.output_shape);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool_grad_grad<T>(g, x.data<T>().data(), ddx.data<T>().data(),
                          out.mutable_data<T>().data());
  });
}

void avg_pool_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const PoolGeometry g = runtime_geometry(ctx, x.shape());
  Array& y = ctx.allocate_output(0, g.output_shape);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool<T>(g, x.data<T>().data(), y.mutable_data<T>().data());
  });
}

void avg_pool_grad_kernel(KernelContext& ctx) {
  const Array& sizes = ctx.input(0);
  const Array& dy = ctx.input(1);
  if (sizes.shape() != Shape{4})
    ctx.fail(str("input_sizes must have 4 entries, got ", sizes.shape()));
  const Shape in = detail::shape_from_input(ctx, 0, "input_sizes");
  const PoolGeometry g = runtime_geometry(ctx, in);
  require_shape(ctx, dy, g.output_shape, "grad");
  Array& dx = ctx.allocate_output(0, in);
  dispatch_floating(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool_grad<T>(g, dy.data<T>().data(), dx.mutable_data<T>().data());
  });
}

// Max pooling is piecewise linear: its gradient ops route values through the argmax (which
// carries no gradient itself), so MaxPoolGrad and MaxPoolGradGrad are each other's adjoints.
void max_pool_gradient(GradContext& g) {
  g.set(0, nn::max_pool2d_grad(g.input(0), g.grad_output(0), g.attrs<PoolAttrs>().params));
}
void max_pool_grad_gradient(GradContext& g) {
  if (g.wants(1)) {
    g.set(1, nn::max_pool2d_grad_grad(g.input(0), g.grad_output(0), g.attrs<PoolAttrs>().params));
  }
}
void max_pool_grad_grad_gradient(GradContext& g) {
  if (g.wants(1)) {
    g.set(1, nn::max_pool2d_grad(g.input(0), g.grad_output(0), g.attrs<PoolAttrs>().params));
  }
}
void avg_pool_gradient(GradContext& g) {
  g.set(0, nn::avg_pool2d_grad(shape(g.input(0)), g.grad_output(0), g.attrs<PoolAttrs>().params));
}
void avg_pool_grad_gradient(GradContext& g) {
  if (g.wants(1)) g.set(1, nn::avg_pool2d(g.grad_output(0), g.attrs<PoolAttrs>().params));
}

const OpDef kMaxPoolOp{.name = "MaxPool", .kernel = max_pool_kernel, .gradient = max_pool_gradient};
const OpDef kMaxPoolGradOp{
    .name = "MaxPoolGrad", .kernel = max_pool_grad_kernel, .gradient = max_pool_grad_gradient};
const OpDef kMaxPoolGradGradOp{.name = "MaxPoolGradGrad",
                               .kernel = max_pool_grad_grad_kernel,
                               .gradient = max_pool_grad_grad_gradient};
const OpDef kAvgPoolOp{.name = "AvgPool", .kernel = avg_pool_kernel, .gradient = avg_pool_gradient};
const OpDef kAvgPoolGradOp{
    .name = "AvgPoolGrad", .kernel = avg_pool_grad_kernel, .gradient = avg_pool_grad_gradient};

// Build-time checks; returns the static output shape for input shape `in` (-1 where unknown).
Shape static_output(const std::string& who, const Tensor& value, const Shape& in,
                    const Pool2DParams& p) {
  const auto fail = [&](const std::string& what) { throw ValueError(str(who, ": ", what)); };
  if (!is_floating(value.dtype())) {
    fail(str("'", value.name(), "' is ", value.dtype(),
             "; expected float32 or float64 (use ad::cast)"));
  }
  for (int d = 0; d < 2; ++d) {
    if (p.ksize[d] < 1 || p.strides[d] < 1) {
      fail(str("pool_size and strides must be >= 1, got pool_size [", p.ksize[0], ", ", p.ksize[1],
               "] and strides [", p.strides[0], ", ", p.strides[1], "]"));
    }
  }
  if (in.rank() != 4) {
    fail(str("input must have rank 4 (",
             p.data_format == DataFormat::kChannelsFirst ? "[batch, channels, height, width]"
                                                         : "[batch, height, width, channels]",
             "), got ", in));
  }
  const bool nchw = p.data_format == DataFormat::kChannelsFirst;
  auto out_dim = [&](std::int64_t size, int d) -> std::int64_t {
    if (size < 0) return -1;
    const ConvWindow window = conv_window(size, p.ksize[d], p.strides[d], 1, p.padding);
    if (window.out == 0 && size > 0) {
      fail(str("the ", p.ksize[0], "x", p.ksize[1], " window does not fit the input ", in,
               " with padding valid; use padding same or a smaller pool_size"));
    }
    return window.out;
  };
  const std::int64_t oh = out_dim(in[nchw ? 2 : 1], 0);
  const std::int64_t ow = out_dim(in[nchw ? 3 : 2], 1);
  return nchw ? Shape{in[0], in[1], oh, ow} : Shape{in[0], oh, ow, in[3]};
}

std::string who(Graph& graph, const char* op, const OpDef& def) {
  return detail::op_label(graph, op, def.name);
}

void require(const Tensor& t, const char* op) {
  if (!t) throw ValueError(str(op, ": an operand is an empty Tensor"));
}

void require_same(const std::string& name, const Tensor& a, const Tensor& b, const Shape& expected,
                  const char* what) {
  if (&a.graph() != &b.graph())
    throw ValueError(str(name, ": operands belong to different graphs"));
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(name, ": ", what, " '", b.name(), "' is ", b.dtype(), " but '", a.name(),
                         "' is ", a.dtype()));
  }
  if (!b.shape().is_compatible_with(expected)) {
    throw ValueError(
        str(name, ": ", what, " '", b.name(), "' is ", b.shape(), " but should be ", expected));
  }
}

Tensor pool(const OpDef& def, const char* op, const Tensor& input, const Pool2DParams& params) {
  require(input, op);
  const std::string name = who(input.graph(), op, def);
  const Shape out = static_output(name, input, input.shape(), params);
  const Tensor inputs[] = {input};
  return input.graph().record1(def, inputs, {input.dtype(), out}, PoolAttrs{params});
}

}  // namespace

namespace nn {

Tensor max_pool2d(const Tensor& input, const Pool2DParams& params) {
  return pool(kMaxPoolOp, "max_pool2d", input, params);
}

Tensor avg_pool2d(const Tensor& input, const Pool2DParams& params) {
  return pool(kAvgPoolOp, "avg_pool2d", input, params);
}

Tensor max_pool2d_grad(const Tensor& input, const Tensor& grad, const Pool2DParams& params) {
  require(input, "max_pool2d_grad");
  require(grad, "max_pool2d_grad");
  const std::string name = who(input.graph(), "max_pool2d_grad", kMaxPoolGradOp);
  const Shape out = static_output(name, input, input.shape(), params);
  require_same(name, input, grad, out, "grad");
  const Tensor inputs[] = {input, grad};
  return input.graph().record1(kMaxPoolGradOp, inputs, {input.dtype(), input.shape()},
                               PoolAttrs{params});
}

Tensor max_pool2d_grad_grad(const Tensor& input, const Tensor& grad_grad,
                            const Pool2DParams& params) {
  require(input, "max_pool2d_grad_grad");
  require(grad_grad, "max_pool2d_grad_grad");
  const std::string name = who(input.graph(), "max_pool2d_grad_grad", kMaxPoolGradGradOp);
  const Shape out = static_output(name, input, input.shape(), params);
  require_same(name, input, grad_grad, input.shape(), "grad_grad");
  const Tensor inputs[] = {input, grad_grad};
  return input.graph().record1(kMaxPoolGradGradOp, inputs, {input.dtype(), out}, PoolAttrs{params});
}

Tensor avg_pool2d_grad(const Tensor& input_sizes, const Tensor& grad, const Pool2DParams& params) {
  require(grad, "avg_pool2d_grad");
  const std::string name = who(grad.graph(), "avg_pool2d_grad", kAvgPoolGradOp);
  const Shape in = detail::static_dims_value(input_sizes, name, false);
  const Shape out = static_output(name, grad, in, params);
  require_same(name, grad, grad, out, "grad");
  const Tensor inputs[] = {input_sizes, grad};
  return grad.graph().record1(kAvgPoolGradOp, inputs, {grad.dtype(), in}, PoolAttrs{params});
}

}  // namespace nn
}  // namespace ad
