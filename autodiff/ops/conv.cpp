// Conv2D and its two backprop ops. float32 runs through oneDNN (conv_onednn.h); float64, the
// reference the tests compare against, runs im2col (or col2im) into a scratch buffer, then one GEMM
// per chunk of images through the wrapper in gemm.h. channels_last computes [rows, K] x [K, F],
// which lands directly in NHWC order; channels_first computes [F, K] x [K, count * OH * OW] and
// copies the result to NCHW order. Chunks have a fixed size, so results do not depend on the thread
// count.
#include "autodiff/ops/conv.h"

#include <algorithm>
#include <ostream>
#include <type_traits>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/internal/conv_onednn.h"
#include "autodiff/ops/internal/gemm.h"
#include "autodiff/ops/internal/op_errors.h"

namespace ad {

std::string_view to_string(Padding padding) { return padding == Padding::kSame ? "same" : "valid"; }

std::string_view to_string(DataFormat format) {
  return format == DataFormat::kChannelsFirst ? "channels_first" : "channels_last";
}

std::ostream& operator<<(std::ostream& out, Padding padding) { return out << to_string(padding); }

std::ostream& operator<<(std::ostream& out, DataFormat format) { return out << to_string(format); }

ConvWindow conv_window(std::int64_t in, std::int64_t size, std::int64_t stride,
                       std::int64_t dilation, Padding padding) {
  const std::int64_t effective = (size - 1) * dilation + 1;
  ConvWindow window;
  if (padding == Padding::kSame) {
    window.out = (in + stride - 1) / stride;
    const std::int64_t total =
        std::max<std::int64_t>((window.out - 1) * stride + effective - in, 0);
    window.pad_before = total / 2;
    window.pad_after = total - window.pad_before;
  } else {
    window.out = in >= effective ? (in - effective) / stride + 1 : 0;
  }
  return window;
}

namespace {

// Elements of im2col scratch per chunk of images (16 MB of float32): large enough for full-speed
// GEMMs, small enough to stay in memory comfortably. The scratch comes from the session's pool, so
// a steady-state run allocates nothing.
constexpr std::int64_t kColBudget = std::int64_t{1} << 22;
// Output positions per partial GEMM of the filter gradient.
constexpr std::int64_t kRowBlock = 512;

struct ConvAttrs {
  Conv2DParams params;
  Shape filter_sizes;  // Conv2DBackpropFilter only
};

// Everything a kernel needs about one convolution, resolved from run-time shapes.
struct Geometry {
  std::int64_t n = 0, h = 0, w = 0, c = 0, kh = 0, kw = 0, f = 0, oh = 0, ow = 0;
  std::int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  bool nchw = false;
  [[nodiscard]] std::int64_t k() const { return kh * kw * c; }
  [[nodiscard]] std::int64_t p() const { return oh * ow; }
  [[nodiscard]] std::int64_t in_image() const { return h * w * c; }
  [[nodiscard]] std::int64_t out_image() const { return oh * ow * f; }
  // A 1x1 kernel with stride 1 on channels_last needs no im2col: the input already is the column
  // matrix [N * H * W, C].
  [[nodiscard]] bool direct() const { return !nchw && kh == 1 && kw == 1 && sh == 1 && sw == 1; }
  [[nodiscard]] std::int64_t images_per_chunk() const {
    const std::int64_t per_image = std::max<std::int64_t>(p() * k(), 1);
    return std::clamp<std::int64_t>(kColBudget / per_image, 1, std::max<std::int64_t>(n, 1));
  }
  [[nodiscard]] Shape input_shape() const { return nchw ? Shape{n, c, h, w} : Shape{n, h, w, c}; }
  [[nodiscard]] Shape output_shape() const {
    return nchw ? Shape{n, f, oh, ow} : Shape{n, oh, ow, f};
  }
};

std::string window_text(std::int64_t kh, std::int64_t kw, const Conv2DParams& p) {
  std::string text = str(kh, "x", kw, " window");
  if (p.dilations[0] != 1 || p.dilations[1] != 1) {
    text +=
        str(" (", (kh - 1) * p.dilations[0] + 1, "x", (kw - 1) * p.dilations[1] + 1, " dilated)");
  }
  return text;
}

// Resolves the geometry of input `in` and filter `filter`; `fail` reports a mismatch.
template <class Fail>
Geometry geometry(const Shape& in, const Shape& filter, const Conv2DParams& p, Fail fail) {
  if (in.rank() != 4) fail(str("input must have rank 4, got ", in));
  if (filter.rank() != 4) fail(str("filter must have rank 4 [kh, kw, in, out], got ", filter));
  Geometry g;
  g.nchw = p.data_format == DataFormat::kChannelsFirst;
  g.n = in[0];
  g.c = in[g.nchw ? 1 : 3];
  g.h = in[g.nchw ? 2 : 1];
  g.w = in[g.nchw ? 3 : 2];
  g.kh = filter[0];
  g.kw = filter[1];
  g.f = filter[3];
  if (filter[2] != g.c) {
    fail(str("input has ", g.c, " channels (shape ", in, ", ", to_string(p.data_format),
             ") but the filter expects ", filter[2], " (filter ", filter, ")"));
  }
  g.sh = p.strides[0];
  g.sw = p.strides[1];
  g.dh = p.dilations[0];
  g.dw = p.dilations[1];
  const ConvWindow wh = conv_window(g.h, g.kh, g.sh, g.dh, p.padding);
  const ConvWindow ww = conv_window(g.w, g.kw, g.sw, g.dw, p.padding);
  g.oh = wh.out;
  g.ow = ww.out;
  g.pt = wh.pad_before;
  g.pl = ww.pad_before;
  g.pb = wh.pad_after;
  g.pr = ww.pad_after;
  if ((g.oh == 0 && g.h > 0) || (g.ow == 0 && g.w > 0)) {
    fail(str("the ", window_text(g.kh, g.kw, p), " does not fit the ", g.h, "x", g.w,
             " input (shape ", in, ") with padding valid; use padding same or a smaller window"));
  }
  return g;
}

// Filter column j of a convolution: output column ow reads input column ow * sw + offset, which
// lies in [0, w) exactly for ow in [lo, hi).
struct TapColumns {
  std::int64_t offset = 0, lo = 0, hi = 0;
};
TapColumns tap_columns(const Geometry& g, std::int64_t j) {
  const std::int64_t offset = j * g.dw - g.pl;
  const std::int64_t hi = std::min(g.w - offset <= 0 ? 0 : (g.w - 1 - offset) / g.sw + 1, g.ow);
  const std::int64_t lo = offset >= 0 ? 0 : (-offset + g.sw - 1) / g.sw;
  return {offset, std::min(lo, hi), hi};
}

// The GEMM path's temporary buffers, taken from the session's pool for one kernel call (so they
// count against its memory cap) and given back to it when the kernel returns: the column matrix of
// a chunk of images, a chunk's outputs (or their gradients) as [F, count * P] for channels_first,
// and, for the filter gradient, its double accumulator and a GEMM's partial.
template <class T>
struct Workspace {
  Scratch col, matrix, sum, partial;
  Workspace(KernelContext& ctx, const Geometry& g, bool filter_grad)
      : col(ctx.scratch<T>(g.direct() ? 0 : g.images_per_chunk() * g.p() * g.k(), "im2col")),
        matrix(ctx.scratch<T>(g.nchw ? g.images_per_chunk() * g.p() * g.f : 0,
                              "channels_first outputs")),
        sum(ctx.scratch<double>(filter_grad ? g.k() * g.f : 0, "filter gradient sums")),
        partial(ctx.scratch<T>(filter_grad ? g.k() * g.f : 0, "filter gradient partials")) {}
};

// One image, channels_last: col[(oh, ow), (kh, kw, c)]. Walked tap by tap so the in-bounds
// outputs of each image row are a range, and single channels are copied without a call.
template <class T>
void im2col_nhwc(const Geometry& g, const T* x, T* col) {
  const std::int64_t k = g.k();
  for (std::int64_t i = 0; i < g.kh; ++i) {
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [offset, lo, hi] = tap_columns(g, j);
      const std::int64_t tap = (i * g.kw + j) * g.c;
      for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        T* row = col + oh * g.ow * k + tap;
        const std::int64_t ih = oh * g.sh - g.pt + i * g.dh;
        const bool inside = ih >= 0 && ih < g.h;
        const std::int64_t first = inside ? lo : g.ow;
        const std::int64_t last = inside ? hi : g.ow;
        for (std::int64_t ow = 0; ow < first; ++ow) std::fill_n(row + ow * k, g.c, T{0});
        for (std::int64_t ow = last; ow < g.ow; ++ow) std::fill_n(row + ow * k, g.c, T{0});
        if (!inside) continue;
        // Indices, not a shifted pointer: ih * w + offset may be negative before `first`.
        const std::int64_t base = ih * g.w + offset;
        if (g.c == 1) {
          for (std::int64_t ow = first; ow < last; ++ow) row[ow * k] = x[base + ow * g.sw];
        } else {
          for (std::int64_t ow = first; ow < last; ++ow) {
            std::copy_n(x + (base + ow * g.sw) * g.c, g.c, row + ow * k);
          }
        }
      }
    }
  }
}

// The adjoint of im2col_nhwc: dx (zeroed here) accumulates every column entry.
template <class T>
void col2im_nhwc(const Geometry& g, const T* col, T* dx) {
  std::fill_n(dx, g.in_image(), T{0});
  const std::int64_t k = g.k();
  for (std::int64_t i = 0; i < g.kh; ++i) {
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [offset, lo, hi] = tap_columns(g, j);
      const std::int64_t tap = (i * g.kw + j) * g.c;
      for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        const std::int64_t ih = oh * g.sh - g.pt + i * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        const T* row = col + oh * g.ow * k + tap;
        const std::int64_t base = ih * g.w + offset;
        for (std::int64_t ow = lo; ow < hi; ++ow) {
          const T* s = row + ow * k;
          T* d = dx + (base + ow * g.sw) * g.c;
#pragma omp simd
          for (std::int64_t c = 0; c < g.c; ++c) d[c] += s[c];
        }
      }
    }
  }
}

// One image, channels_first: rows (kh, kw, c) (the filter matrix's row order), columns (oh, ow),
// written with row stride `ld` so the images of a chunk sit side by side in one [K, count * P]
// matrix.
template <class T>
void im2col_nchw(const Geometry& g, const T* x, T* col, std::int64_t ld) {
  for (std::int64_t i = 0; i < g.kh; ++i) {
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [offset, lo, hi] = tap_columns(g, j);
      for (std::int64_t c = 0; c < g.c; ++c) {
        T* dst = col + ((i * g.kw + j) * g.c + c) * ld;
        const T* plane = x + c * g.h * g.w;
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
          T* d = dst + oh * g.ow;
          const std::int64_t ih = oh * g.sh - g.pt + i * g.dh;
          if (ih < 0 || ih >= g.h) {
            std::fill_n(d, g.ow, T{0});
            continue;
          }
          const std::int64_t base = ih * g.w + offset;
          std::fill_n(d, lo, T{0});
          for (std::int64_t ow = lo; ow < hi; ++ow) d[ow] = plane[base + ow * g.sw];
          std::fill_n(d + hi, g.ow - hi, T{0});
        }
      }
    }
  }
}

template <class T>
void col2im_nchw(const Geometry& g, const T* col, std::int64_t ld, T* dx) {
  std::fill_n(dx, g.in_image(), T{0});
  for (std::int64_t i = 0; i < g.kh; ++i) {
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [offset, lo, hi] = tap_columns(g, j);
      for (std::int64_t c = 0; c < g.c; ++c) {
        const T* src = col + ((i * g.kw + j) * g.c + c) * ld;
        T* plane = dx + c * g.h * g.w;
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
          const std::int64_t ih = oh * g.sh - g.pt + i * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          const T* s = src + oh * g.ow;
          const std::int64_t base = ih * g.w + offset;
          for (std::int64_t ow = lo; ow < hi; ++ow) plane[base + ow * g.sw] += s[ow];
        }
      }
    }
  }
}

// The column matrix of images [n0, n0 + count): [count * P, K] for channels_last, [K, count * P]
// for channels_first. Returns the input itself when direct(), otherwise fills and returns `col`.
// Serial on purpose: the copies are memory-bound and cheap next to the GEMM, and an OpenMP team
// spinning after its loop would compete with OpenBLAS's threads for the cores.
template <class T>
const T* fill_columns(const Geometry& g, const T* x, std::int64_t n0, std::int64_t count, T* col) {
  if (g.direct()) return x + n0 * g.in_image();
  const std::int64_t p = g.p();
  for (std::int64_t i = 0; i < count; ++i) {
    const T* image = x + (n0 + i) * g.in_image();
    if (g.nchw) {
      im2col_nchw(g, image, col + i * p, count * p);
    } else {
      im2col_nhwc(g, image, col + i * p * g.k());
    }
  }
  return col;
}

template <class T>
void scatter_columns(const Geometry& g, const T* col, std::int64_t n0, std::int64_t count, T* dx) {
  const std::int64_t p = g.p();
  for (std::int64_t i = 0; i < count; ++i) {
    T* image = dx + (n0 + i) * g.in_image();
    if (g.nchw) {
      col2im_nchw(g, col + i * p, count * p, image);
    } else {
      col2im_nhwc(g, col + i * p * g.k(), image);
    }
  }
}

// channels_first outputs of a chunk: [count, F, P] in memory <-> [F, count * P] for the GEMMs.
template <class T>
void gather_outputs(const Geometry& g, const T* y, std::int64_t count, T* matrix) {
  const std::int64_t p = g.p();
  for (std::int64_t i = 0; i < count; ++i) {
    for (std::int64_t f = 0; f < g.f; ++f) {
      std::copy_n(y + (i * g.f + f) * p, p, matrix + f * count * p + i * p);
    }
  }
}

template <class T>
void scatter_outputs(const Geometry& g, const T* matrix, std::int64_t count, T* y) {
  const std::int64_t p = g.p();
  for (std::int64_t i = 0; i < count; ++i) {
    for (std::int64_t f = 0; f < g.f; ++f) {
      std::copy_n(matrix + f * count * p + i * p, p, y + (i * g.f + f) * p);
    }
  }
}

// y = conv(x, w): one GEMM per chunk of images.
template <class T>
void forward(const Geometry& g, const Workspace<T>& ws, const T* x, const T* w, T* y) {
  const std::int64_t k = g.k();
  const std::int64_t p = g.p();
  const std::int64_t chunk = g.images_per_chunk();
  T* col = ws.col.template data<T>();
  T* out = ws.matrix.template data<T>();
  for (std::int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const std::int64_t count = std::min(chunk, g.n - n0);
    const T* cols = fill_columns(g, x, n0, count, col);
    if (!g.nchw) {
      gemm<T>(false, false, count * p, g.f, k, T{1}, cols, k, w, g.f, T{0}, y + n0 * g.out_image(),
              g.f);
    } else {
      gemm<T>(true, false, g.f, count * p, k, T{1}, w, g.f, cols, count * p, T{0}, out, count * p);
      scatter_outputs(g, out, count, y + n0 * g.out_image());
    }
  }
}

// dw = sum over the batch of col^T dy. The sum runs over every output position, so it is split
// into blocks of kRowBlock positions whose GEMMs go to a scratch partial, accumulated in double
// (a float32 GEMM accumulates in float32; this keeps dw within 1e-6 of a float64 reference). The
// blocks depend only on the shapes, so the result does not depend on the thread count.
template <class T>
void filter_grad(const Geometry& g, const Workspace<T>& ws, const T* x, const T* dy, T* dw) {
  const std::int64_t k = g.k();
  const std::int64_t p = g.p();
  const std::int64_t size = k * g.f;
  double* sum = ws.sum.template data<double>();
  T* partial = ws.partial.template data<T>();
  std::fill_n(sum, size, 0.0);
  auto accumulate = [&] {
#pragma omp simd
    for (std::int64_t i = 0; i < size; ++i) sum[i] += static_cast<double>(partial[i]);
  };
  const std::int64_t chunk = g.images_per_chunk();
  T* col = ws.col.template data<T>();
  T* grads = ws.matrix.template data<T>();
  for (std::int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const std::int64_t count = std::min(chunk, g.n - n0);
    const std::int64_t columns = count * p;
    const T* cols = fill_columns(g, x, n0, count, col);
    if (g.nchw) gather_outputs(g, dy + n0 * g.out_image(), count, grads);
    for (std::int64_t r0 = 0; r0 < columns; r0 += kRowBlock) {
      const std::int64_t rows = std::min(kRowBlock, columns - r0);
      if (!g.nchw) {
        gemm<T>(true, false, k, g.f, rows, T{1}, cols + r0 * k, k,
                dy + n0 * g.out_image() + r0 * g.f, g.f, T{0}, partial, g.f);
      } else {
        gemm<T>(false, true, k, g.f, rows, T{1}, cols + r0, columns, grads + r0, columns, T{0},
                partial, g.f);
      }
      accumulate();
    }
  }
  for (std::int64_t i = 0; i < size; ++i) dw[i] = static_cast<T>(sum[i]);
}

// dx = col2im(dy w^T), one GEMM per chunk of images.
template <class T>
void input_grad(const Geometry& g, const Workspace<T>& ws, const T* w, const T* dy, T* dx) {
  const std::int64_t k = g.k();
  const std::int64_t p = g.p();
  const std::int64_t chunk = g.images_per_chunk();
  T* col = ws.col.template data<T>();
  T* grads = ws.matrix.template data<T>();
  for (std::int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const std::int64_t count = std::min(chunk, g.n - n0);
    T* cols = g.direct() ? dx + n0 * g.in_image() : col;
    if (!g.nchw) {
      gemm<T>(false, true, count * p, k, g.f, T{1}, dy + n0 * g.out_image(), g.f, w, g.f, T{0},
              cols, k);
    } else {
      gather_outputs(g, dy + n0 * g.out_image(), count, grads);
      gemm<T>(false, false, k, count * p, g.f, T{1}, w, g.f, grads, count * p, T{0}, cols,
              count * p);
    }
    if (!g.direct()) scatter_columns(g, col, n0, count, dx);
  }
}

// float32 runs through oneDNN (conv_onednn.h); float64 keeps the GEMM path above, which the tests
// use as the reference. Empty operands (a zero batch, size, channel or filter count) also take the
// GEMM path, which handles them without calling a library.
bool use_onednn(const Geometry& g) {
  return g.n > 0 && g.k() > 0 && g.p() > 0 && g.f > 0 && g.in_image() > 0;
}

detail::OnednnConv onednn(const Geometry& g) {
  return {g.n,  g.h,  g.w,  g.c,  g.kh, g.kw, g.f,  g.oh, g.ow,
          g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.pb, g.pr, g.nchw};
}

// The oneDNN calls' own buffers are counted against the session's cap while they run.
template <class T>
void run_forward(KernelContext& ctx, const Geometry& g, const T* x, const T* w, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_onednn(g)) {
      const auto held = ctx.reserve_scratch(
          detail::onednn_conv_scratch_bytes(onednn(g), detail::OnednnPass::kForward), "oneDNN");
      return detail::onednn_conv_forward(onednn(g), x, w, y);
    }
  }
  forward<T>(g, Workspace<T>(ctx, g, false), x, w, y);
}

template <class T>
void run_input_grad(KernelContext& ctx, const Geometry& g, const T* w, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_onednn(g)) {
      const auto held = ctx.reserve_scratch(
          detail::onednn_conv_scratch_bytes(onednn(g), detail::OnednnPass::kBackwardData),
          "oneDNN");
      return detail::onednn_conv_backward_data(onednn(g), w, dy, dx);
    }
  }
  input_grad<T>(g, Workspace<T>(ctx, g, false), w, dy, dx);
}

template <class T>
void run_filter_grad(KernelContext& ctx, const Geometry& g, const T* x, const T* dy, T* dw) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_onednn(g)) {
      const auto held = ctx.reserve_scratch(
          detail::onednn_conv_scratch_bytes(onednn(g), detail::OnednnPass::kBackwardWeights),
          "oneDNN");
      return detail::onednn_conv_backward_weights(onednn(g), x, dy, dw);
    }
  }
  filter_grad<T>(g, Workspace<T>(ctx, g, true), x, dy, dw);
}

template <class Ctx>
auto failer(const Ctx& ctx) {
  return [&ctx](const std::string& what) { ctx.fail(what); };
}

void check_out_backprop(const KernelContext& ctx, const Geometry& g, const Array& dy) {
  if (dy.shape() != g.output_shape()) {
    ctx.fail(str("out_backprop is ", dy.shape(), " but the convolution of ", g.input_shape(),
                 " gives ", g.output_shape()));
  }
}

void conv2d_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<ConvAttrs>();
  const Array& x = ctx.input(0);
  const Array& w = ctx.input(1);
  const Geometry g = geometry(x.shape(), w.shape(), attrs.params, failer(ctx));
  Array& y = ctx.allocate_output(0, g.output_shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    run_forward<T>(ctx, g, x.data<T>().data(), w.data<T>().data(), y.mutable_data<T>().data());
  });
}

void backprop_input_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<ConvAttrs>();
  const Array& sizes = ctx.input(0);
  const Array& w = ctx.input(1);
  const Array& dy = ctx.input(2);
  if (sizes.shape() != Shape{4})
    ctx.fail(str("input_sizes must have 4 entries, got ", sizes.shape()));
  const Shape in = detail::shape_from_input(ctx, 0, "input_sizes");
  const Geometry g = geometry(in, w.shape(), attrs.params, failer(ctx));
  check_out_backprop(ctx, g, dy);
  Array& dx = ctx.allocate_output(0, in);
  dispatch_floating(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    run_input_grad<T>(ctx, g, w.data<T>().data(), dy.data<T>().data(), dx.mutable_data<T>().data());
  });
}

void backprop_filter_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<ConvAttrs>();
  const Array& x = ctx.input(0);
  const Array& dy = ctx.input(1);
  const Geometry g = geometry(x.shape(), attrs.filter_sizes, attrs.params, failer(ctx));
  check_out_backprop(ctx, g, dy);
  Array& dw = ctx.allocate_output(0, attrs.filter_sizes);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    run_filter_grad<T>(ctx, g, x.data<T>().data(), dy.data<T>().data(),
                       dw.mutable_data<T>().data());
  });
}

// Each op is bilinear in its two tensor operands, and the three ops are each other's adjoints:
//   y  = conv(x, w)          dx = backprop_input(dy, w)     dw = backprop_filter(x, dy)
void conv2d_gradient(GradContext& g) {
  const auto& params = g.attrs<ConvAttrs>().params;
  const Tensor dy = g.grad_output(0);
  if (g.wants(0)) g.set(0, nn::conv2d_backprop_input(shape(g.input(0)), g.input(1), dy, params));
  if (g.wants(1)) {
    g.set(1, nn::conv2d_backprop_filter(g.input(0), g.input(1).shape(), dy, params));
  }
}

// dx(w, dy) with incoming ddx: d/dw = backprop_filter(ddx, dy), d/ddy = conv(ddx, w).
void backprop_input_gradient(GradContext& g) {
  const auto& params = g.attrs<ConvAttrs>().params;
  const Tensor ddx = g.grad_output(0);
  if (g.wants(1)) {
    g.set(1, nn::conv2d_backprop_filter(ddx, g.input(1).shape(), g.input(2), params));
  }
  if (g.wants(2)) g.set(2, nn::conv2d(ddx, g.input(1), params));
}

// dw(x, dy) with incoming ddw: d/dx = backprop_input(ddw, dy), d/ddy = conv(x, ddw).
void backprop_filter_gradient(GradContext& g) {
  const auto& params = g.attrs<ConvAttrs>().params;
  const Tensor ddw = g.grad_output(0);
  if (g.wants(0)) g.set(0, nn::conv2d_backprop_input(shape(g.input(0)), ddw, g.input(1), params));
  if (g.wants(1)) g.set(1, nn::conv2d(g.input(0), ddw, params));
}

const OpDef kConv2DOp{.name = "Conv2D", .kernel = conv2d_kernel, .gradient = conv2d_gradient};
const OpDef kConv2DBackpropInputOp{.name = "Conv2DBackpropInput",
                                   .kernel = backprop_input_kernel,
                                   .gradient = backprop_input_gradient};
const OpDef kConv2DBackpropFilterOp{.name = "Conv2DBackpropFilter",
                                    .kernel = backprop_filter_kernel,
                                    .gradient = backprop_filter_gradient};

// Build-time checks shared by the three builders; returns the static output shape of the forward
// convolution of `in` with `filter` (dims -1 where unknown).
Shape static_geometry(const std::string& who, const Shape& in, const Shape& filter,
                      const Conv2DParams& p) {
  const auto fail = [&](const std::string& what) { throw ValueError(str(who, ": ", what)); };
  for (int d = 0; d < 2; ++d) {
    if (p.strides[d] < 1 || p.dilations[d] < 1) {
      fail(str("strides and dilations must be >= 1, got strides [", p.strides[0], ", ",
               p.strides[1], "] and dilations [", p.dilations[0], ", ", p.dilations[1], "]"));
    }
  }
  const bool nchw = p.data_format == DataFormat::kChannelsFirst;
  if (in.rank() != 4) {
    fail(str("input must have rank 4 (",
             nchw ? "[batch, channels, height, width]" : "[batch, height, width, channels]",
             "), got ", in));
  }
  if (filter.rank() != 4) fail(str("filter must have rank 4 [kh, kw, in, out], got ", filter));
  const std::int64_t c = in[nchw ? 1 : 3];
  if (c >= 0 && filter[2] >= 0 && c != filter[2]) {
    fail(str("input has ", c, " channels (shape ", in, ", ", to_string(p.data_format),
             ") but the filter expects ", filter[2], " (filter ", filter, ")"));
  }
  auto out_dim = [&](std::int64_t size, std::int64_t k, int d) -> std::int64_t {
    if (size < 0 || k < 0) return -1;
    const ConvWindow window = conv_window(size, k, p.strides[d], p.dilations[d], p.padding);
    if (window.out == 0 && size > 0) {
      fail(str("the ", window_text(filter[0], filter[1], p), " does not fit the input ", in,
               " with padding valid; use padding same or a smaller window"));
    }
    return window.out;
  };
  const std::int64_t oh = out_dim(in[nchw ? 2 : 1], filter[0], 0);
  const std::int64_t ow = out_dim(in[nchw ? 3 : 2], filter[1], 1);
  return nchw ? Shape{in[0], filter[3], oh, ow} : Shape{in[0], oh, ow, filter[3]};
}

std::string who(Graph& graph, const char* op, const OpDef& def) {
  return detail::op_label(graph, op, def.name);
}

void check_operands(const std::string& name, const Tensor& a, const Tensor& b) {
  if (!a || !b) throw ValueError(str(name, ": an operand is an empty Tensor"));
  if (&a.graph() != &b.graph())
    throw ValueError(str(name, ": operands belong to different graphs"));
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(name, ": operands have different dtypes: '", a.name(), "' is ", a.dtype(),
                         ", '", b.name(), "' is ", b.dtype(), " (use ad::cast)"));
  }
  if (!is_floating(a.dtype())) {
    throw ValueError(
        str(name, ": operands are ", a.dtype(), "; expected float32 or float64 (use ad::cast)"));
  }
}

void check_out_backprop_shape(const std::string& name, const Tensor& dy, const Shape& expected) {
  if (!dy.shape().is_compatible_with(expected)) {
    throw ValueError(str(name, ": out_backprop '", dy.name(), "' is ", dy.shape(),
                         " but the convolution gives ", expected));
  }
}

}  // namespace

namespace nn {

Tensor conv2d(const Tensor& input, const Tensor& filter, const Conv2DParams& params) {
  if (!input) throw ValueError("conv2d: the input is an empty Tensor");
  const std::string name = who(input.graph(), "conv2d", kConv2DOp);
  check_operands(name, input, filter);
  const Shape out = static_geometry(name, input.shape(), filter.shape(), params);
  const Tensor inputs[] = {input, filter};
  return input.graph().record1(kConv2DOp, inputs, {input.dtype(), out}, ConvAttrs{params, {}});
}

Tensor conv2d_backprop_input(const Tensor& input_sizes, const Tensor& filter,
                             const Tensor& out_backprop, const Conv2DParams& params) {
  if (!filter) throw ValueError("conv2d_backprop_input: the filter is an empty Tensor");
  const std::string name = who(filter.graph(), "conv2d_backprop_input", kConv2DBackpropInputOp);
  check_operands(name, filter, out_backprop);
  const Shape in = detail::static_dims_value(input_sizes, name, false);
  check_out_backprop_shape(name, out_backprop, static_geometry(name, in, filter.shape(), params));
  const Tensor inputs[] = {input_sizes, filter, out_backprop};
  return filter.graph().record1(kConv2DBackpropInputOp, inputs, {filter.dtype(), in},
                                ConvAttrs{params, {}});
}

Tensor conv2d_backprop_filter(const Tensor& input, const Shape& filter_sizes,
                              const Tensor& out_backprop, const Conv2DParams& params) {
  if (!input) throw ValueError("conv2d_backprop_filter: the input is an empty Tensor");
  const std::string name = who(input.graph(), "conv2d_backprop_filter", kConv2DBackpropFilterOp);
  check_operands(name, input, out_backprop);
  if (filter_sizes.rank() != 4 || !filter_sizes.is_fully_defined()) {
    throw ValueError(str(name, ": filter_sizes must be a known rank-4 shape, got ", filter_sizes));
  }
  check_out_backprop_shape(name, out_backprop,
                           static_geometry(name, input.shape(), filter_sizes, params));
  const Tensor inputs[] = {input, out_backprop};
  return input.graph().record1(kConv2DBackpropFilterOp, inputs, {input.dtype(), filter_sizes},
                               ConvAttrs{params, filter_sizes});
}

}  // namespace nn
}  // namespace ad
