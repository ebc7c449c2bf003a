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

#include "autodiff/shape.h"

namespace ad::detail {

struct ChannelLayout {
  std::int64_t outer = 1;
  std::int64_t channels = 1;
  std::int64_t inner = 1;
  bool contiguous = true;
};

ChannelLayout channel_layout(const Shape& shape, const std::vector<int>& reduction_axes);
// Channel of every element (for layouts that are not contiguous).
std::vector<std::int64_t> channel_index(const Shape& shape, const std::vector<int>& reduction_axes);

constexpr std::int64_t kChunk = 1024;   // elements summed in float before going to double
constexpr std::int64_t kRowBlock = 32;  // rows summed in float in the [rows, channels] layout
constexpr std::int64_t kParallelWork = 1 << 15;

// Runs body(i) for i in [0, n): across OpenMP threads only when `parallel`. A small loop must not
// reach `omp parallel ... if (false)`, which still builds a thread team (about 0.3 us of CPU).
template <class Body>
void for_each_index(std::int64_t n, bool parallel, Body body) {
  if (parallel) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

// Running (count, mean, M2) in double, merged with Chan et al.'s pairwise formula.
struct Welford {
  double n = 0;
  double mean = 0;
  double m2 = 0;
  void merge(double n_b, double mean_b, double m2_b) {
    const double total = n + n_b;
    if (total == 0) return;
    const double delta = mean_b - mean;
    mean += delta * n_b / total;
    m2 += m2_b + delta * delta * n * n_b / total;
    n = total;
  }
};

// Two passes over one L1-resident run: its mean, then its centred sum of squares.
template <class T>
void run_moments(const T* x, std::int64_t len, Welford& acc) {
  for (std::int64_t start = 0; start < len; start += kChunk) {
    const std::int64_t n = std::min(kChunk, len - start);
    const T* p = x + start;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t i = 0; i < n; ++i) sum += p[i];
    const T center = static_cast<T>(static_cast<double>(sum) / static_cast<double>(n));
    // Corrected two-pass: the float center is off by a little; the residual sum r of (x - center)
    // gives the exact chunk mean center + r/n and centred sum of squares m2 - r^2/n.
    T m2 = 0;
    T r = 0;
#pragma omp simd reduction(+ : m2, r)
    for (std::int64_t i = 0; i < n; ++i) {
      const T d = p[i] - center;
      r += d;
      m2 += d * d;
    }
    const double nd = static_cast<double>(n);
    const double rd = static_cast<double>(r);
    acc.merge(nd, static_cast<double>(center) + rd / nd, static_cast<double>(m2) - rd * rd / nd);
  }
}

// Per-channel mean and biased variance of x.
template <class T>
void channel_moments(const ChannelLayout& l, const T* x, T* mean, T* variance) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  if (l.inner > 1 || C == 1) {
    for_each_index(C, total >= kParallelWork && C > 1, [&](std::int64_t c) {
      Welford acc;
      for (std::int64_t o = 0; o < l.outer; ++o) {
        run_moments(x + (o * C + c) * l.inner, l.inner, acc);
      }
      mean[c] = static_cast<T>(acc.mean);
      variance[c] = static_cast<T>(acc.n > 0 ? acc.m2 / acc.n : 0.0);
    });
    return;
  }
  // [rows, C]: blocks of rows, each reduced with two passes in float lanes across channels, then
  // merged per channel in block order. Threads take channel ranges, so each channel is reduced in
  // the same order whatever the thread count.
  const std::int64_t rows = l.outer;
  constexpr std::int64_t kChannelTile = 256;
  const std::int64_t tiles = (C + kChannelTile - 1) / kChannelTile;
  for_each_index(tiles, total >= kParallelWork && tiles > 1, [&](std::int64_t tile) {
    const std::int64_t c0 = tile * kChannelTile;
    const std::int64_t width = std::min(kChannelTile, C - c0);
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
      // As in run_moments: correct the float block mean with the residual sum.
      const double nb = static_cast<double>(nr);
      const double total_n = n_acc + nb;
      for (std::int64_t k = 0; k < width; ++k) {
        const double r = static_cast<double>(res[k]);
        const double block_mean = static_cast<double>(sum[k]) + r / nb;
        const double block_m2 = static_cast<double>(m2[k]) - r * r / nb;
        const double delta = block_mean - mean_acc[k];
        mean_acc[k] += delta * nb / total_n;
        m2_acc[k] += block_m2 + delta * delta * n_acc * nb / total_n;
      }
      n_acc = total_n;
    }
    for (std::int64_t k = 0; k < width; ++k) {
      mean[c0 + k] = static_cast<T>(mean_acc[k]);
      variance[c0 + k] = static_cast<T>(n_acc > 0 ? m2_acc[k] / n_acc : 0.0);
    }
  });
}

// Per channel: sum of dy and sum of dy * (x - mean[c]).
template <class T>
void channel_grad_sums(const ChannelLayout& l, const T* x, const T* dy, const T* mean,
                       double* sum_dy, double* sum_dyx) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  if (l.inner > 1 || C == 1) {
    for_each_index(C, total >= kParallelWork && C > 1, [&](std::int64_t c) {
      double s1 = 0;
      double s2 = 0;
      const T mu = mean[c];
      for (std::int64_t o = 0; o < l.outer; ++o) {
        const T* xo = x + (o * C + c) * l.inner;
        const T* go = dy + (o * C + c) * l.inner;
        for (std::int64_t start = 0; start < l.inner; start += kChunk) {
          const std::int64_t n = std::min(kChunk, l.inner - start);
          T p1 = 0;
          T p2 = 0;
#pragma omp simd reduction(+ : p1, p2)
          for (std::int64_t i = start; i < start + n; ++i) {
            p1 += go[i];
            p2 += go[i] * (xo[i] - mu);
          }
          s1 += static_cast<double>(p1);
          s2 += static_cast<double>(p2);
        }
      }
      sum_dy[c] = s1;
      sum_dyx[c] = s2;
    });
    return;
  }
  const std::int64_t rows = l.outer;
  constexpr std::int64_t kChannelTile = 256;
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

// out = a[c] * u + b[c], or with v: out = a[c] * u + k[c] * v + b[c] (k may be null).
template <class T>
void channel_affine(const ChannelLayout& l, const T* u, const T* a, const T* v, const T* k,
                    const T* b, T* out) {
  const std::int64_t C = l.channels;
  const std::int64_t total = l.outer * C * l.inner;
  if (l.inner > 1 || C == 1) {
    for_each_index(l.outer * C, total >= kParallelWork, [&](std::int64_t oc) {
      {
        const std::int64_t c = oc % C;
        const std::int64_t base = oc * l.inner;
        const T ac = a[c];
        const T bc = b[c];
        if (k != nullptr) {
          const T kc = k[c];
#pragma omp simd
          for (std::int64_t i = 0; i < l.inner; ++i)
            out[base + i] = ac * u[base + i] + kc * v[base + i] + bc;
        } else {
#pragma omp simd
          for (std::int64_t i = 0; i < l.inner; ++i) out[base + i] = u[base + i] * ac + bc;
        }
      }
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

}  // namespace ad::detail
