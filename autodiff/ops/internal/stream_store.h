// Internal: non-temporal ("streaming") stores for memory-bound kernels whose output is too large to
// stay in cache. An ordinary store first reads the destination line into the cache (read for
// ownership), so writing a tensor that does not fit costs a read and a write of it; a streaming
// store skips the read. For outputs that would fit in the last-level cache it is a loss (the next
// op would read them back from memory), so kernels stream only above streaming_threshold_bytes().
//
// The vector code computes exactly the scalar expressions (no contraction: the project builds with
// -ffp-contract=off), so streaming changes where bytes go, never their values.
#pragma once

#include <cstdint>

#include "autodiff/ops/internal/isa_dispatch.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ad::detail {

// Bytes from which an output is written with streaming stores: 16 MiB, half the 32 MiB L3 of the
// machines this was tuned on. (sysconf's _SC_LEVEL3_CACHE_SIZE is no guide in a VM: it reported a
// 320 MiB L3 there.)
std::int64_t streaming_threshold_bytes();

inline bool stream_output(std::int64_t bytes) { return bytes >= streaming_threshold_bytes(); }

// The templates are compiled per instruction set (see isa_dispatch.h).
inline namespace GRADTAPE_KERNEL_NS {

// A coefficient of the affine map: one value for the whole run, or one per element.
template <class T>
struct Broadcast {
  T value;
  T at(std::int64_t) const { return value; }
};
template <class T>
struct PerElement {
  const T* values;
  T at(std::int64_t i) const { return values[i]; }
};

// out[i] = u[i] * a + b, or with v: out[i] = a * u[i] + k * v[i] + b (the expressions, and their
// operand order, of the ordinary loops in channel_stats.h).
template <class T, class C>
inline T affine_value(const T* u, C a, const T* v, C k, C b, std::int64_t i) {
  return v != nullptr ? a.at(i) * u[i] + k.at(i) * v[i] + b.at(i) : u[i] * a.at(i) + b.at(i);
}

#if defined(__SSE2__)
template <class T>
struct StreamVec;

#if defined(__AVX__)
template <>
struct StreamVec<float> {
  using V = __m256;
  static constexpr int kWidth = 8;
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V add(V x, V y) { return _mm256_add_ps(x, y); }
  static V mul(V x, V y) { return _mm256_mul_ps(x, y); }
  static void stream(float* p, V x) { _mm256_stream_ps(p, x); }
};
template <>
struct StreamVec<double> {
  using V = __m256d;
  static constexpr int kWidth = 4;
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V add(V x, V y) { return _mm256_add_pd(x, y); }
  static V mul(V x, V y) { return _mm256_mul_pd(x, y); }
  static void stream(double* p, V x) { _mm256_stream_pd(p, x); }
};
#else
template <>
struct StreamVec<float> {
  using V = __m128;
  static constexpr int kWidth = 4;
  static V set1(float x) { return _mm_set1_ps(x); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V add(V x, V y) { return _mm_add_ps(x, y); }
  static V mul(V x, V y) { return _mm_mul_ps(x, y); }
  static void stream(float* p, V x) { _mm_stream_ps(p, x); }
};
template <>
struct StreamVec<double> {
  using V = __m128d;
  static constexpr int kWidth = 2;
  static V set1(double x) { return _mm_set1_pd(x); }
  static V load(const double* p) { return _mm_loadu_pd(p); }
  static V add(V x, V y) { return _mm_add_pd(x, y); }
  static V mul(V x, V y) { return _mm_mul_pd(x, y); }
  static void stream(double* p, V x) { _mm_stream_pd(p, x); }
};
#endif

template <class T>
typename StreamVec<T>::V vec(Broadcast<T> c, std::int64_t) {
  return StreamVec<T>::set1(c.value);
}
template <class T>
typename StreamVec<T>::V vec(PerElement<T> c, std::int64_t i) {
  return StreamVec<T>::load(c.values + i);
}

// The run of affine_value with streaming stores (scalar stores for the unaligned head and the
// tail). Streaming stores are weakly ordered: call stream_fence() after a thread's last one, before
// other threads may read what it wrote.
template <class T, class C>
void stream_affine(std::int64_t n, const T* u, C a, const T* v, C k, C b, T* out) {
  using W = StreamVec<T>;
  constexpr std::uintptr_t kAlign = sizeof(T) * W::kWidth;
  std::int64_t i = 0;
  for (; i < n && reinterpret_cast<std::uintptr_t>(out + i) % kAlign != 0; ++i)
    out[i] = affine_value(u, a, v, k, b, i);
  if (v != nullptr) {
    for (; i + W::kWidth <= n; i += W::kWidth) {
      const auto au = W::mul(vec(a, i), W::load(u + i));
      const auto kv = W::mul(vec(k, i), W::load(v + i));
      W::stream(out + i, W::add(W::add(au, kv), vec(b, i)));
    }
  } else {
    for (; i + W::kWidth <= n; i += W::kWidth)
      W::stream(out + i, W::add(W::mul(W::load(u + i), vec(a, i)), vec(b, i)));
  }
  for (; i < n; ++i) out[i] = affine_value(u, a, v, k, b, i);
}

inline void stream_fence() { _mm_sfence(); }
#else
template <class T, class C>
void stream_affine(std::int64_t n, const T* u, C a, const T* v, C k, C b, T* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = affine_value(u, a, v, k, b, i);
}

inline void stream_fence() {}
#endif

}  // namespace GRADTAPE_KERNEL_NS

}  // namespace ad::detail
