// Internal: the loops kernels use to spread work over the library's threads
// (autodiff/internal/thread_pool.h) only when it pays.
//
// A small loop stays on the calling thread without touching the pool (branching here costs
// nothing; handing even an empty loop to other threads costs a wake-up). Work is split into pieces
// fixed by the sizes alone (never by the thread count), so results do not depend on the number of
// threads.
#pragma once

#include <algorithm>
#include <cstdint>

#include "autodiff/internal/thread_pool.h"

namespace ad::detail {

// Below this many elements (or element-sized steps of work) a loop runs on the calling thread.
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
// The fixed chunk of for_each_element's parallel path.
inline constexpr std::int64_t kChunkElements = 4096;

// Runs body(i) for i in [0, n), across threads only when `parallel` (and n > 1). Each index is
// one piece of work: body(i) must not depend on which thread runs it.
template <class Body>
void for_each_index(std::int64_t n, bool parallel, Body body) {
  if (parallel && n > 1) {
    parallel_for(n, [&body](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) body(i);
    });
  } else {
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

// Runs body(i) for i in [0, n) as a vectorized loop, across threads when n is large. Threads take
// fixed chunks, each a plain simd loop (`omp simd` needs only -fopenmp-simd; inside
// `omp parallel for simd`, GCC 12 did not if-convert a lambda's select).
template <class Body>
void for_each_element(std::int64_t n, Body body) {
  if (n >= kParallelElements) {
    const std::int64_t chunks = (n + kChunkElements - 1) / kChunkElements;
    parallel_for(chunks, [&body, n](std::int64_t first, std::int64_t last) {
      for (std::int64_t chunk = first; chunk < last; ++chunk) {
        const std::int64_t end = std::min(n, (chunk + 1) * kChunkElements);
#pragma omp simd
        for (std::int64_t i = chunk * kChunkElements; i < end; ++i) body(i);
      }
    });
  } else {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace ad::detail
