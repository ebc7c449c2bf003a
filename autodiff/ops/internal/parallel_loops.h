// Internal: the loops kernels use to spread work over OpenMP threads only when it pays.
//
// A small loop must never reach `#pragma omp parallel ... if (false)`: libgomp still builds a
// one-thread team and makes a futex syscall for it, about 0.33 us of CPU per loop, more than a
// tiny op's whole budget. These helpers branch before the parallel region instead. Work is split
// into pieces fixed by the sizes alone (never by the thread count), so results do not depend on
// the number of threads.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ad::detail {

// Below this many elements (or element-sized steps of work) a loop runs on the calling thread.
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;

// Runs body(i) for i in [0, n), across threads only when `parallel` (and n > 1).
template <class Body>
void for_each_index(std::int64_t n, bool parallel, Body body) {
  if (parallel && n > 1) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

// Runs body(i) for i in [0, n) as a vectorized loop, across threads when n is large. Threads take
// fixed chunks, each a plain simd loop: inside `omp parallel for simd`, GCC 12 did not if-convert
// a lambda's select (it left a mispredicted branch per element).
template <class Body>
void for_each_element(std::int64_t n, Body body) {
  if (n >= kParallelElements) {
    constexpr std::int64_t kChunkElements = 4096;
    const std::int64_t chunks = (n + kChunkElements - 1) / kChunkElements;
#pragma omp parallel for schedule(static)
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      const std::int64_t end = std::min(n, (chunk + 1) * kChunkElements);
#pragma omp simd
      for (std::int64_t i = chunk * kChunkElements; i < end; ++i) body(i);
    }
  } else {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace ad::detail
