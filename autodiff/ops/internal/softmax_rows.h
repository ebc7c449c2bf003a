// Internal: the softmax family's row loops (softmax, log_softmax, the sparse and dense softmax
// cross-entropies), compiled once per instruction set (autodiff/ops/isa/softmax.cpp, see
// isa_dispatch.h); nn.cpp's kernels check shapes and labels, then call them. Sums run in fixed
// lanes (fixed_lanes.h), so every set gives the same bits.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "autodiff/ops/internal/fixed_lanes.h"
#include "autodiff/ops/internal/isa_dispatch.h"
#include "autodiff/ops/internal/parallel_loops.h"

// Rows are along the last axis unless said otherwise; labels are already checked to be in range.
GRADTAPE_ISA_DECLARE(
    // softmax (kLog: log_softmax) of x viewed as [outer, length, inner] along the middle axis.
    template <class T, bool kLog>
    void softmax(std::int64_t outer, std::int64_t length, std::int64_t inner, const T* x, T* y);
    // probs = softmax of each row of [batch, classes] logits x, loss[b] = logsumexp(x_b) -
    // x_b[label[b]].
    template <class T> void sparse_xent(std::int64_t batch, std::int64_t classes, const T* x,
                                        const std::int64_t* label, T* probs, T* loss);
    // grad = (probs - one_hot(label)) * dloss[:, None].
    template <class T>
    void sparse_xent_grad(std::int64_t batch, std::int64_t classes, const T* probs, const T* dloss,
                          const std::int64_t* label, T* grad);
    // log_probs = log_softmax of each row of x, loss[r] = -sum(labels_r * log_probs_r).
    template <class T> void softmax_xent(std::int64_t rows, std::int64_t classes, const T* x,
                                         const T* labels, T* log_probs, T* loss);)

namespace ad::detail {
inline namespace GRADTAPE_KERNEL_NS {

// Columns handled together when softmax runs along a non-last axis: the running max and sum of a
// stripe stay in registers/L1 while the loop walks down the axis one contiguous row at a time.
constexpr std::int64_t kStripe = 64;

// a where `take_a`, else b. Written with integer masks because GCC will not if-convert a float
// select under the default -ftrapping-math, which would keep the loops below from vectorizing.
inline float blend(bool take_a, float a, float b) {
  const std::int32_t mask = -static_cast<std::int32_t>(take_a);
  return std::bit_cast<float>((std::bit_cast<std::int32_t>(a) & mask) |
                              (std::bit_cast<std::int32_t>(b) & ~mask));
}

// exp(x) for float32 in a form the compiler vectorizes (glibc's expf is a scalar call): Cephes'
// expf, i.e. x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact reduction), a degree-7
// polynomial for exp(r), and 2^n assembled in the exponent bits. Within 1 ulp of the correctly
// rounded value for every x <= 0 whose exp is a normal float (checked exhaustively in steps of 7
// ulps); 0 below that, NaN for NaN. Softmax only ever passes x - max(x) <= 0.
inline float exp_vectorizable(float x) {
  constexpr float kLowest = -87.3365447505531F;  // log(FLT_MIN)
  constexpr float kHighest = 88.3762626647949F;  // keeps n <= 127
  const bool underflows = x < kLowest;
  const bool is_nan = x != x;
  float clamped = blend(underflows, kLowest, x);
  clamped = blend(clamped > kHighest, kHighest, clamped);
  clamped = blend(is_nan, 0.0F, clamped);
  // Round to nearest by adding and removing 1.5 * 2^23.
  const float n = (clamped * 1.44269504088896341F + 12582912.0F) - 12582912.0F;
  const float r = (clamped - n * 0.693359375F) - n * -2.12194440e-4F;
  float p = 1.9875691500e-4F;
  p = p * r + 1.3981999507e-3F;
  p = p * r + 8.3334519073e-3F;
  p = p * r + 4.1665795894e-2F;
  p = p * r + 1.6666665459e-1F;
  p = p * r + 5.0000001201e-1F;
  p = p * (r * r) + r + 1.0F;
  const float scale = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
  return blend(is_nan, x, blend(underflows, 0.0F, p * scale));
}

template <class T>
T exp_shifted(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_vectorizable(x);
  } else {
    return std::exp(x);
  }
}

// Largest of x[0..n), n >= 1.
template <class T>
T row_max(const T* x, std::int64_t n) {
  return detail::fixed_lane_max(x, n);
}

// Sum of exp(x[i] - shift), accumulated in double in fixed lanes; with kStore the exponentials go
// to e[i].
template <class T, bool kStore>
double exp_sum(const T* x, T shift, T* e, std::int64_t n) {
  return detail::fixed_lane_sum(n, [&](std::int64_t i) {
    const T v = exp_shifted(x[i] - shift);
    if constexpr (kStore) e[i] = v;
    return static_cast<double>(v);
  });
}

// softmax (or log_softmax) of one contiguous row: one pass for the max, one for the exponentials
// and their sum, one to normalize. Shifting by the max keeps every exp() in (0, 1].
template <class T, bool kLog>
void softmax_row(const T* x, T* y, std::int64_t n) {
  const T m = row_max(x, n);
  if constexpr (kLog) {
    const double log_sum = std::log(exp_sum<T, false>(x, m, nullptr, n));
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<T>(static_cast<double>(x[i] - m) - log_sum);
    }
  } else {
    const double inv_sum = 1.0 / exp_sum<T, true>(x, m, y, n);
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(static_cast<double>(y[i]) * inv_sum);
  }
}

// The same along a non-last axis, for `width` (<= kStripe) adjacent columns at once: x and y point
// at column 0 of the first of `length` rows, `stride` elements apart.
template <class T, bool kLog>
void softmax_stripe(const T* x, T* y, std::int64_t length, std::int64_t stride,
                    std::int64_t width) {
  std::array<T, kStripe> m{};
  std::array<double, kStripe> s{};
  for (std::int64_t c = 0; c < width; ++c) m[c] = x[c];
  for (std::int64_t a = 1; a < length; ++a) {
    const T* row = x + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) m[c] = row[c] > m[c] ? row[c] : m[c];
  }
  for (std::int64_t a = 0; a < length; ++a) {
    const T* row = x + a * stride;
    T* out = y + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) {
      const T e = exp_shifted(row[c] - m[c]);
      if constexpr (!kLog) out[c] = e;
      s[c] += static_cast<double>(e);
    }
  }
  for (std::int64_t c = 0; c < width; ++c) s[c] = kLog ? std::log(s[c]) : 1.0 / s[c];
  for (std::int64_t a = 0; a < length; ++a) {
    const T* row = x + a * stride;
    T* out = y + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) {
      if constexpr (kLog) {
        out[c] = static_cast<T>(static_cast<double>(row[c] - m[c]) - s[c]);
      } else {
        out[c] = static_cast<T>(static_cast<double>(out[c]) * s[c]);
      }
    }
  }
}

template <class T, bool kLog>
void softmax_loop(std::int64_t outer, std::int64_t length, std::int64_t inner, const T* in, T* y) {
  const bool parallel = outer * length * inner >= kParallelElements;
  if (inner == 1) {
    for_each_index(outer, parallel, [&](std::int64_t r) {
      softmax_row<T, kLog>(in + r * length, y + r * length, length);
    });
    return;
  }
  const std::int64_t stripes = (inner + kStripe - 1) / kStripe;
  const std::int64_t block = length * inner;
  for_each_index(outer * stripes, parallel, [&](std::int64_t u) {
    const std::int64_t offset = (u / stripes) * block + (u % stripes) * kStripe;
    const std::int64_t width = std::min(kStripe, inner - (u % stripes) * kStripe);
    softmax_stripe<T, kLog>(in + offset, y + offset, length, inner, width);
  });
}

template <class T>
void sparse_xent_loop(std::int64_t batch, std::int64_t classes, const T* x,
                      const std::int64_t* label, T* p, T* l) {
  for_each_index(batch, batch * classes >= kParallelElements, [&](std::int64_t b) {
    const T* row = x + b * classes;
    T* prob = p + b * classes;
    const T m = row_max(row, classes);
    const double sum = exp_sum<T, true>(row, m, prob, classes);
    const double inv_sum = 1.0 / sum;
#pragma omp simd
    for (std::int64_t j = 0; j < classes; ++j) {
      prob[j] = static_cast<T>(static_cast<double>(prob[j]) * inv_sum);
    }
    const std::int64_t target = label[b];
    l[b] = static_cast<T>(std::log(sum) - static_cast<double>(row[target] - m));
  });
}

template <class T>
void sparse_xent_grad_loop(std::int64_t batch, std::int64_t classes, const T* p, const T* d,
                           const std::int64_t* label, T* g) {
  for_each_index(batch, batch * classes >= kParallelElements, [&](std::int64_t b) {
    const T* prob = p + b * classes;
    T* grad = g + b * classes;
    const T scale = d[b];
#pragma omp simd
    for (std::int64_t j = 0; j < classes; ++j) grad[j] = prob[j] * scale;
    const std::int64_t target = label[b];
    grad[target] = (prob[target] - T{1}) * scale;
  });
}

template <class T>
void softmax_xent_loop(std::int64_t rows, std::int64_t classes, const T* x, const T* z, T* lp,
                       T* l) {
  for_each_index(rows, rows * classes >= kParallelElements, [&](std::int64_t r) {
    const T* row = x + r * classes;
    const T* target = z + r * classes;
    T* out = lp + r * classes;
    if (classes == 0) {
      l[r] = T{0};
      return;
    }
    const T m = row_max(row, classes);
    const double log_sum = std::log(exp_sum<T, false>(row, m, nullptr, classes));
    const double cross = fixed_lane_sum(classes, [&](std::int64_t j) {
      const double log_prob = static_cast<double>(row[j] - m) - log_sum;
      out[j] = static_cast<T>(log_prob);
      return static_cast<double>(target[j]) * log_prob;
    });
    l[r] = static_cast<T>(-cross);
  });
}

}  // namespace GRADTAPE_KERNEL_NS
}  // namespace ad::detail
