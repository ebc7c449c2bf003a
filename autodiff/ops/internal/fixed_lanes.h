// Internal: sums and maxima over a run in a fixed order. `#pragma omp simd reduction` lets the
// compiler pick the number of partial results from the vector width, so the same source gives
// different bits on SSE2, AVX2 and AVX-512 builds. These keep kLanes partials (lane k takes
// elements k, k + kLanes, ...) and fold them pairwise: the order is set by the source alone, the
// loop still vectorizes, and the result is bitwise the same for every ISA and thread count.
#pragma once

#include <array>
#include <cstdint>

#include "autodiff/ops/internal/isa_dispatch.h"

namespace ad::detail {

inline constexpr int kFixedLanes = 8;

// Compiled per instruction set (see isa_dispatch.h).
inline namespace GRADTAPE_KERNEL_NS {

// sum over i in [0, n) of term(i), accumulated in double. term may also store (e.g. e[i] = v).
template <class Term>
double fixed_lane_sum(std::int64_t n, Term term) {
  std::array<double, kFixedLanes> lane{};
  std::int64_t i = 0;
  for (; i + kFixedLanes <= n; i += kFixedLanes) {
#pragma omp simd
    for (int k = 0; k < kFixedLanes; ++k) lane[static_cast<unsigned>(k)] += term(i + k);
  }
  for (int k = 0; i + k < n; ++k) lane[static_cast<unsigned>(k)] += term(i + k);
  for (int width = kFixedLanes / 2; width >= 1; width /= 2) {
    for (int k = 0; k < width; ++k)
      lane[static_cast<unsigned>(k)] += lane[static_cast<unsigned>(k + width)];
  }
  return lane[0];
}

// The largest of x[0..n), n >= 1, as `m = x[i] > m ? x[i] : m` from m = x[0] computes it: a NaN
// in x[0] is the result, a NaN elsewhere is skipped; between -0 and +0 the lanes' fixed order
// decides.
template <class T>
T fixed_lane_max(const T* x, std::int64_t n) {
  std::array<T, kFixedLanes> lane;
  lane.fill(x[0]);
  std::int64_t i = 1;
  for (; i + kFixedLanes <= n; i += kFixedLanes) {
#pragma omp simd
    for (int k = 0; k < kFixedLanes; ++k) {
      const T v = x[i + k];
      T& m = lane[static_cast<unsigned>(k)];
      m = v > m ? v : m;
    }
  }
  for (int k = 0; i + k < n; ++k) {
    T& m = lane[static_cast<unsigned>(k)];
    m = x[i + k] > m ? x[i + k] : m;
  }
  for (int width = kFixedLanes / 2; width >= 1; width /= 2) {
    for (int k = 0; k < width; ++k) {
      T& m = lane[static_cast<unsigned>(k)];
      const T v = lane[static_cast<unsigned>(k + width)];
      m = v > m ? v : m;
    }
  }
  return lane[0];
}

}  // namespace GRADTAPE_KERNEL_NS

}  // namespace ad::detail
