// Internal: per-channel kernels shared by the batch-norm ops. A tensor is viewed as
// [outer, channels, inner] when its kept ("channel") axes form one contiguous block; otherwise
// every element's channel comes from an index table.
//
// Accuracy and determinism: sums run in float lanes over short chunks (kChunk elements, or
// kRowBlock rows) and chunks are combined in double, always in the same order. Work is split
// across threads by channel (or by fixed row blocks combined in block order), never in a way that
// depends on the thread count, so results are bitwise identical with any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "autodiff/ops/internal/isa_dispatch.h"
#include "autodiff/ops/internal/kernel_vector.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/internal/stream_store.h"
#include "autodiff/shape.h"

namespace ad::detail {

struct ChannelLayout {
  std::int64_t outer = 1;
  std::int64_t channels = 1;
  std::int64_t inner = 1;
  bool contiguous = true;
};

ChannelLayout channel_layout(const Shape& shape, const std::vector<int>& reduction_axes);
// Reduction axes normalized against `rank` (negative counts from the end), sorted; ValueError
// naming `op` for an axis out of range or repeated. Unlike the reductions' detail::resolve_axes
// (ops/reduce.h), no axes means no axes (every element its own channel), not all of them.
std::vector<int> resolve_channel_axes(const std::vector<int>& axes, int rank, const char* op);
// `shape` with the (resolved) reduction axes set to 1: the keepdims shape of per-channel values.
Shape reduced_shape(const Shape& shape, const std::vector<int>& reduction_axes);
// Channel of every element (for layouts that are not contiguous).
std::vector<std::int64_t> channel_index(const Shape& shape, const std::vector<int>& reduction_axes);

constexpr std::int64_t kChunk = 1024;       // elements summed in float before going to double
constexpr std::int64_t kRowBlock = 32;      // rows summed in float in the [rows, channels] layout
constexpr std::int64_t kChannelTile = 256;  // channels one task of the [rows, channels] loops owns
constexpr std::int64_t kParallelWork = kParallelElements;

// The normalization family's one statistic: (count, mean, M2 = sum of squared deviations from the
// mean) in the accumulation type, double. Partial statistics of disjoint parts of a channel merge
// with Chan, Golub and LeVeque's pairwise formula, in any grouping: the kernels below merge
// cache-sized chunks in a fixed order, and the same merge combines per-process partials (a
// synchronized batch norm) or per-group ones. Never E[x^2] - E[x]^2.
struct MomentStats {
  double count = 0;
  double mean = 0;
  double m2 = 0;
  [[gnu::always_inline]] void merge(double count_b, double mean_b, double m2_b) {
    const double total = count + count_b;
    if (total == 0) return;
    const double delta = mean_b - mean;
    mean += delta * count_b / total;
    m2 += m2_b + delta * delta * count * count_b / total;
    count = total;
  }
  [[gnu::always_inline]] void merge(const MomentStats& b) { merge(b.count, b.mean, b.m2); }
  // The biased variance M2 / count (0 for an empty channel).
  [[nodiscard, gnu::always_inline]] double variance() const { return count > 0 ? m2 / count : 0.0; }
};

// Sums of dy and of dy * (x - mean) in double.
struct GradSums {
  double dy = 0;
  double dyx = 0;
  [[gnu::always_inline]] void merge(const GradSums& b) {
    dy += b.dy;
    dyx += b.dyx;
  }
};

}  // namespace ad::detail

// The contiguous-layout kernels, compiled per instruction set (autodiff/ops/isa/channel.cpp) for
// float and double; statistics(), grad_sums() and affine() below call them.
GRADTAPE_ISA_DECLARE(
    template <class T> void channel_statistics(const ad::detail::ChannelLayout& layout, const T* x,
                                               ad::detail::MomentStats* stats);
    template <class T>
    void channel_grad_sums(const ad::detail::ChannelLayout& layout, const T* x, const T* dy,
                           const T* mean, double* sum_dy, double* sum_dyx);
    template <class T> void channel_affine(const ad::detail::ChannelLayout& layout, const T* u,
                                           const T* a, const T* v, const T* k, const T* b, T* out);)

namespace ad::detail {

// The kernels: templates in the instruction set's own namespace (see isa_dispatch.h).
inline namespace GRADTAPE_KERNEL_NS {

// Reductions over a run accumulate into kLanes independent partial sums (lane j takes elements
// j, j + kLanes, ...), folded pairwise at the end. The order is fixed by the source, not by the
// vector width, so the bits are the same with any instruction set, and the independent partial
// sums keep the adder pipelines full (one accumulator is bound by the add latency).
constexpr int kLanes = 32;

template <class T>
T fold_lanes(T* acc) {
  for (int w = kLanes / 2; w >= 1; w /= 2) {
#pragma omp simd
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

// Two passes over one L1-resident run: its mean, then its centred sum of squares.
template <class T>
void run_moments(const T* x, std::int64_t len, MomentStats& acc) {
  for (std::int64_t start = 0; start < len; start += kChunk) {
    const std::int64_t n = std::min(kChunk, len - start);
    const T* p = x + start;
    T sum[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) sum[j] += p[i + j];
    }
    for (int j = 0; i < n; ++i, ++j) sum[j] += p[i];
    const T center = static_cast<T>(static_cast<double>(fold_lanes(sum)) / static_cast<double>(n));
    // Corrected two-pass: the float center is off by a little; the residual sum r of (x - center)
    // gives the exact chunk mean center + r/n and centred sum of squares m2 - r^2/n.
    T m2[kLanes] = {};
    T r[kLanes] = {};
    i = 0;
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const T d = p[i + j] - center;
        r[j] += d;
        m2[j] += d * d;
      }
    }
    for (int j = 0; i < n; ++i, ++j) {
      const T d = p[i] - center;
      r[j] += d;
      m2[j] += d * d;
    }
    const double nd = static_cast<double>(n);
    const double rd = static_cast<double>(fold_lanes(r));
    acc.merge(nd, static_cast<double>(center) + rd / nd,
              static_cast<double>(fold_lanes(m2)) - rd * rd / nd);
  }
}

// Sums of dy and of dy * (x - mu) over one run, in float lanes per kChunk, chunks added in double.
template <class T>
void run_grad_sums(const T* x, const T* dy, std::int64_t len, T mu, GradSums& acc) {
  for (std::int64_t start = 0; start < len; start += kChunk) {
    const std::int64_t n = std::min(kChunk, len - start);
    const T* xp = x + start;
    const T* gp = dy + start;
    T p1[kLanes] = {};
    T p2[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        p1[j] += gp[i + j];
        p2[j] += gp[i + j] * (xp[i + j] - mu);
      }
    }
    for (int j = 0; i < n; ++i, ++j) {
      p1[j] += gp[i];
      p2[j] += gp[i] * (xp[i] - mu);
    }
    acc.dy += static_cast<double>(fold_lanes(p1));
    acc.dyx += static_cast<double>(fold_lanes(p2));
  }
}

// Channel-major layouts ([outer, C, inner], inner >= kMinRun) are reduced in memory order: each run
// of `inner` elements is cut into segments of at most kSegment elements, every segment is reduced
// on its own (in parallel when the work is large), and each channel then merges its segments.
// Streaming through memory in order keeps the hardware prefetchers busy, where walking one
// channel's runs (strided by C * inner) would restart them at every run.
constexpr std::int64_t kSegment = 1 << 14;
constexpr std::int64_t kMinRun = 256;  // shorter runs are reduced channel by channel instead

// Reduces every channel of a channel-major layout (inner > 1, or one channel) into an Acc (with
// merge(const Acc&)): run(acc, offset, length, c) folds `length` elements of channel c starting at
// x + offset into acc, then finish(c, acc) stores the result. Short runs are folded channel by
// channel; longer ones segment by segment in memory order, merged per channel in (outer, segment)
// order. Either way each channel's order is fixed by the shape, never by the thread count.
template <class Acc, class Run, class Finish>
void reduce_runs(const ChannelLayout& l, Run run, Finish finish) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  const bool parallel = total >= kParallelWork;
  if (l.inner < kMinRun) {
    for_each_index(C, parallel, [&](std::int64_t c) {
      Acc acc;
      for (std::int64_t o = 0; o < l.outer; ++o) run(acc, (o * C + c) * l.inner, l.inner, c);
      finish(c, acc);
    });
    return;
  }
  const std::int64_t per_run = (l.inner + kSegment - 1) / kSegment;  // segments per run
  const std::int64_t length = (l.inner + per_run - 1) / per_run;     // the last may be shorter
  thread_local KernelVector<Acc> parts;
  parts.assign(static_cast<std::size_t>(l.outer * C * per_run), Acc{});
  Acc* part = parts.data();
  for_each_index(l.outer * C * per_run, parallel, [&](std::int64_t s) {
    const std::int64_t oc = s / per_run;  // segment s lies in run oc = o * C + c
    const std::int64_t begin = (s % per_run) * length;
    run(part[s], oc * l.inner + begin, std::min(length, l.inner - begin), oc % C);
  });
  for (std::int64_t c = 0; c < C; ++c) {
    Acc acc;
    for (std::int64_t o = 0; o < l.outer; ++o) {
      for (std::int64_t k = 0; k < per_run; ++k) acc.merge(part[(o * C + c) * per_run + k]);
    }
    finish(c, acc);
  }
}

// One run of `n` elements: out = a * u + b, or with v: out = a * u + k * v + b; with streaming
// stores when `stream` (see stream_store.h).
template <class T>
void run_affine(std::int64_t n, const T* u, T a, const T* v, T k, T b, T* out,
                bool stream = false) {
  if (stream) {
    stream_affine(n, u, Broadcast<T>{a}, v, Broadcast<T>{k}, Broadcast<T>{b}, out);
    stream_fence();
  } else if (v != nullptr) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = a * u[i] + k * v[i] + b;
  } else {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = u[i] * a + b;
  }
}

// Statistics of channels [c0, c0 + width) of a [rows, C] layout: blocks of kRowBlock rows, each
// reduced with two passes in float lanes across channels (a block mean, then the residual and the
// squared deviations around it, as in run_moments), then merged per channel in block order with
// Chan's formula, its weights computed once per block (multiplications vectorize across channels;
// divisions would cost more than the block's loads).
template <class T>
void row_tile_statistics(const T* x, std::int64_t rows, std::int64_t C, std::int64_t c0,
                         std::int64_t width, MomentStats* stats) {
  T sum[kChannelTile];
  T m2[kChannelTile];
  T res[kChannelTile];
  double n_acc = 0;
  double mean_acc[kChannelTile];
  double m2_acc[kChannelTile];
  for (std::int64_t k = 0; k < width; ++k) mean_acc[k] = m2_acc[k] = 0;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
    const std::int64_t nr = std::min(kRowBlock, rows - r0);
    for (std::int64_t k = 0; k < width; ++k) sum[k] = m2[k] = res[k] = 0;
    for (std::int64_t r = r0; r < r0 + nr; ++r) {
      const T* row = x + r * C + c0;
#pragma omp simd
      for (std::int64_t k = 0; k < width; ++k) sum[k] += row[k];
    }
    const T inv = static_cast<T>(1.0 / static_cast<double>(nr));
    for (std::int64_t k = 0; k < width; ++k) sum[k] *= inv;  // block means
    for (std::int64_t r = r0; r < r0 + nr; ++r) {
      const T* row = x + r * C + c0;
#pragma omp simd
      for (std::int64_t k = 0; k < width; ++k) {
        const T d = row[k] - sum[k];
        res[k] += d;
        m2[k] += d * d;
      }
    }
    const double nb = static_cast<double>(nr);
    const double total_n = n_acc + nb;
    const double inv_nb = 1.0 / nb;
    const double w_block = nb / total_n;
    const double w_cross = n_acc * nb / total_n;
#pragma omp simd
    for (std::int64_t k = 0; k < width; ++k) {
      const double r = static_cast<double>(res[k]);
      const double block_mean = static_cast<double>(sum[k]) + r * inv_nb;
      const double block_m2 = static_cast<double>(m2[k]) - r * r * inv_nb;
      const double delta = block_mean - mean_acc[k];
      mean_acc[k] += delta * w_block;
      m2_acc[k] += block_m2 + delta * delta * w_cross;
    }
    n_acc = total_n;
  }
  for (std::int64_t k = 0; k < width; ++k) stats[c0 + k] = {n_acc, mean_acc[k], m2_acc[k]};
}

// The one blocked reduction of the family: per-channel (count, mean, M2) of x in a contiguous
// layout. Channel-major layouts go through reduce_runs; [rows, C] through row tiles, threads
// taking channel ranges. Either way each channel is reduced in an order fixed by the shape.
template <class T>
void channel_statistics(const ChannelLayout& l, const T* x, MomentStats* stats) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  if (l.inner > 1 || C == 1) {
    reduce_runs<MomentStats>(
        l,
        [&](MomentStats& acc, std::int64_t at, std::int64_t n, std::int64_t) {
          run_moments(x + at, n, acc);
        },
        [&](std::int64_t c, const MomentStats& acc) { stats[c] = acc; });
    return;
  }
  const std::int64_t tiles = (C + kChannelTile - 1) / kChannelTile;
  for_each_index(tiles, total >= kParallelWork && tiles > 1, [&](std::int64_t tile) {
    const std::int64_t c0 = tile * kChannelTile;
    row_tile_statistics(x, l.outer, C, c0, std::min(kChannelTile, C - c0), stats);
  });
}

// Per-channel statistics when every element's channel comes from a table (layouts that are not
// contiguous): two passes in double.
template <class T>
void indexed_statistics(const std::vector<std::int64_t>& channel, const T* x, MomentStats* stats,
                        std::int64_t channels) {
  const auto C = static_cast<std::size_t>(channels);
  std::vector<double> sum(C, 0.0);
  std::vector<double> m2(C, 0.0);
  const double n = static_cast<double>(channel.size()) / static_cast<double>(C);
  for (std::size_t i = 0; i < channel.size(); ++i)
    sum[static_cast<std::size_t>(channel[i])] += x[i];
  for (auto& s : sum) s /= n;
  for (std::size_t i = 0; i < channel.size(); ++i) {
    const double d = static_cast<double>(x[i]) - sum[static_cast<std::size_t>(channel[i])];
    m2[static_cast<std::size_t>(channel[i])] += d * d;
  }
  for (std::size_t c = 0; c < C; ++c) stats[c] = {n, sum[c], m2[c]};
}

// Mean and biased variance of each channel, rounded to T.
template <class T>
void finish_moments(const MomentStats* stats, std::int64_t channels, T* mean, T* variance) {
  for (std::int64_t c = 0; c < channels; ++c) {
    mean[c] = static_cast<T>(stats[c].mean);
    variance[c] = static_cast<T>(stats[c].variance());
  }
}

// Per channel: sum of dy and sum of dy * (x - mean[c]).
template <class T>
void channel_grad_sums(const ChannelLayout& l, const T* x, const T* dy, const T* mean,
                       double* sum_dy, double* sum_dyx) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  if (l.inner > 1 || C == 1) {
    reduce_runs<GradSums>(
        l,
        [&](GradSums& acc, std::int64_t at, std::int64_t n, std::int64_t c) {
          run_grad_sums(x + at, dy + at, n, mean[c], acc);
        },
        [&](std::int64_t c, const GradSums& acc) {
          sum_dy[c] = acc.dy;
          sum_dyx[c] = acc.dyx;
        });
    return;
  }
  const std::int64_t rows = l.outer;
  const std::int64_t tiles = (C + kChannelTile - 1) / kChannelTile;
  for_each_index(tiles, total >= kParallelWork && tiles > 1, [&](std::int64_t tile) {
    const std::int64_t c0 = tile * kChannelTile;
    const std::int64_t width = std::min(kChannelTile, C - c0);
    T p1[kChannelTile];
    T p2[kChannelTile];
    double a1[kChannelTile];
    double a2[kChannelTile];
    for (std::int64_t k = 0; k < width; ++k) a1[k] = a2[k] = 0;
    for (std::int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const std::int64_t nr = std::min(kRowBlock, rows - r0);
      for (std::int64_t k = 0; k < width; ++k) p1[k] = p2[k] = 0;
      for (std::int64_t r = r0; r < r0 + nr; ++r) {
        const T* xr = x + r * C + c0;
        const T* gr = dy + r * C + c0;
        const T* mu = mean + c0;
#pragma omp simd
        for (std::int64_t k = 0; k < width; ++k) {
          p1[k] += gr[k];
          p2[k] += gr[k] * (xr[k] - mu[k]);
        }
      }
      for (std::int64_t k = 0; k < width; ++k) {
        a1[k] += static_cast<double>(p1[k]);
        a2[k] += static_cast<double>(p2[k]);
      }
    }
    for (std::int64_t k = 0; k < width; ++k) {
      sum_dy[c0 + k] = a1[k];
      sum_dyx[c0 + k] = a2[k];
    }
  });
}

// out = a[c] * u + b[c], or with v: out = a[c] * u + k[c] * v + b[c] (k may be null). Outputs
// larger than the streaming threshold are written with streaming stores.
template <class T>
void channel_affine(const ChannelLayout& l, const T* u, const T* a, const T* v, const T* k,
                    const T* b, T* out) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  const bool stream = stream_output(total * static_cast<std::int64_t>(sizeof(T)));
  if (l.inner > 1 || C == 1) {
    for_each_index(l.outer * C, total >= kParallelWork, [&](std::int64_t oc) {
      const std::int64_t c = oc % C;
      const std::int64_t base = oc * l.inner;
      run_affine(l.inner, u + base, a[c], k ? v + base : nullptr, k ? k[c] : T{0}, b[c], out + base,
                 stream);
    });
    return;
  }
  if (stream) {  // blocks of rows, one store fence per block
    const std::int64_t block = std::max<std::int64_t>(1, 4096 / C);
    for_each_index((l.outer + block - 1) / block, true, [&](std::int64_t blk) {
      const std::int64_t end = std::min(l.outer, (blk + 1) * block);
      for (std::int64_t r = blk * block; r < end; ++r) {
        stream_affine(C, u + r * C, PerElement<T>{a}, k ? v + r * C : nullptr, PerElement<T>{k},
                      PerElement<T>{b}, out + r * C);
      }
      stream_fence();
    });
    return;
  }
  for_each_index(l.outer, total >= kParallelWork, [&](std::int64_t r) {
    const std::int64_t base = r * C;
    if (k != nullptr) {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c)
        out[base + c] = a[c] * u[base + c] + k[c] * v[base + c] + b[c];
    } else {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) out[base + c] = u[base + c] * a[c] + b[c];
    }
  });
}

// Per-channel statistics of x over `reduction_axes` in any layout: the blocked kernels for a
// contiguous layout, the channel table `channel` (channel_index) otherwise.
template <class T>
void statistics(const ChannelLayout& layout, const std::vector<std::int64_t>& channel, const T* x,
                MomentStats* stats, std::int64_t channels) {
  if (layout.contiguous) {
    GRADTAPE_ISA_KERNEL(channel_statistics<T>)(layout, x, stats);
  } else {
    indexed_statistics(channel, x, stats, channels);
  }
}

// Batch normalization's gradient from its per-channel sums. Per channel c, over its N elements i
// (N = `count`, the elements of the whole batch: a synchronized batch norm passes the global
// count and globally summed sums), with mean mu, variance var (biased, of x in training),
// s = 1/sqrt(var + epsilon), x_hat_i = (x_i - mu) s, scale gamma, upstream dy_i:
//   doffset = sum_i dy_i
//   dscale  = sum_i dy_i x_hat_i = s * sum_i dy_i (x_i - mu)
// Training (mu and var depend on x):
//   dx_i = gamma s (dy_i - doffset / N - x_hat_i dscale / N)
//        = a dy_i + k x_i + b,
//   with a = gamma s, k = -gamma s^2 dscale / N, b = -a doffset / N - k mu.
// Inference (mu, var are constants): dx_i = gamma s dy_i (k = b = 0).
// The loop has no branches on c, so it vectorizes.
template <class T>
struct ChannelParams {
  const T* scale = nullptr;  // gamma; null means 1
  const T* mean = nullptr;
  const T* variance = nullptr;
};

template <class T>
struct GradCoefficients {
  T* dscale;
  T* doffset;
  T* a;
  T* k;
  T* b;
};

template <class T>
void grad_coefficients(std::int64_t channels, double count, const double* sum_dy,
                       const double* sum_dyx, ChannelParams<T> p, double epsilon, bool training,
                       GradCoefficients<T> out) {
  const double inv_n = 1.0 / count;
#pragma omp simd
  for (std::int64_t c = 0; c < channels; ++c) {
    const double s = 1.0 / std::sqrt(static_cast<double>(p.variance[c]) + epsilon);
    const double g = p.scale ? static_cast<double>(p.scale[c]) : 1.0;
    const double d_offset = sum_dy[c];
    const double d_scale = s * sum_dyx[c];
    out.dscale[c] = static_cast<T>(d_scale);
    out.doffset[c] = static_cast<T>(d_offset);
    const double ac = g * s;
    const double kc = training ? -g * s * s * d_scale * inv_n : 0.0;
    out.a[c] = static_cast<T>(ac);
    out.k[c] = static_cast<T>(kc);
    out.b[c] = training
                   ? static_cast<T>(-ac * d_offset * inv_n - kc * static_cast<double>(p.mean[c]))
                   : T{0};
  }
}

// Per channel: sum of dy and sum of dy * (x - mean[c]) in any layout (see statistics()).
template <class T>
void grad_sums(const ChannelLayout& layout, const std::vector<std::int64_t>& channel, const T* x,
               const T* dy, const T* mean, std::int64_t size, double* sum_dy, double* sum_dyx) {
  if (layout.contiguous) {
    GRADTAPE_ISA_KERNEL(channel_grad_sums<T>)(layout, x, dy, mean, sum_dy, sum_dyx);
    return;
  }
  for (std::int64_t i = 0; i < size; ++i) {
    const auto c = channel[static_cast<std::size_t>(i)];
    sum_dy[c] += static_cast<double>(dy[i]);
    sum_dyx[c] +=
        static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - static_cast<double>(mean[c]));
  }
}

// out = a[c] * u + k[c] * v + b[c] (k null: out = u * a[c] + b[c]) in any layout.
template <class T>
void affine(const ChannelLayout& layout, const std::vector<std::int64_t>& channel, const T* u,
            const T* a, const T* v, const T* k, const T* b, std::int64_t size, T* out) {
  if (layout.contiguous) {
    GRADTAPE_ISA_KERNEL(channel_affine<T>)(layout, u, a, v, k, b, out);
    return;
  }
  for (std::int64_t i = 0; i < size; ++i) {
    const auto c = channel[static_cast<std::size_t>(i)];
    out[i] = k ? a[c] * u[i] + k[c] * v[i] + b[c] : u[i] * a[c] + b[c];
  }
}

}  // namespace GRADTAPE_KERNEL_NS

}  // namespace ad::detail
