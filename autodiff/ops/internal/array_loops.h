// Internal: the strided loop nests shared by the shape, slicing and indexing ops (array.h): a nest
// walks `rank` dims whose last is a contiguous run, each operand advancing by its own strides;
// copy_box moves an n-d box between arrays through one. Also the recorder those ops share.
#pragma once

#include <algorithm>
#include <any>
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/graph.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/shape.h"
#include "autodiff/tensor.h"

namespace ad::detail {

using Dims = std::array<std::int64_t, Shape::kMaxRank>;
using Paddings = std::vector<std::pair<std::int64_t, std::int64_t>>;

inline std::size_t u(int i) { return static_cast<std::size_t>(i); }

// A zeroed per-thread scratch row of doubles for the scatter-adds, reused across runs.
inline double* zeroed_scratch(std::int64_t n) {
  thread_local std::vector<double> scratch;
  scratch.assign(static_cast<std::size_t>(n), 0.0);
  return scratch.data();
}

inline Dims strides_of(const Shape& shape) {
  Dims strides{};
  std::int64_t stride = 1;
  for (int d = shape.rank() - 1; d >= 0; --d) {
    strides[u(d)] = stride;
    stride *= shape[d];
  }
  return strides;
}

// ---- strided loop nests -------------------------------------------------------------------------

// A loop nest over `rank` dims; the last dim is the inner run handed to the callback, and each of
// K operands advances by its own element strides (0 where it is broadcast).
template <int K>
struct Nest {
  int rank = 0;
  Dims dims{};
  std::array<Dims, K> strides{};
  [[nodiscard]] std::int64_t inner() const { return dims[u(rank - 1)]; }
  [[nodiscard]] std::int64_t inner_stride(int k) const { return strides[u(k)][u(rank - 1)]; }
  [[nodiscard]] std::int64_t rows() const {
    std::int64_t n = 1;
    for (int d = 0; d + 1 < rank; ++d) n *= dims[u(d)];
    return n;
  }
};

// Drops size-1 dims and merges neighbours that every operand walks contiguously, so inner runs are
// as long as possible. The result has rank >= 1.
template <int K>
Nest<K> simplify(const Nest<K>& in) {
  Nest<K> out;
  for (int d = 0; d < in.rank; ++d) {
    if (in.dims[u(d)] == 1) continue;
    if (out.rank > 0) {
      const auto p = u(out.rank - 1);
      bool mergeable = true;
      for (std::size_t k = 0; k < K; ++k)
        mergeable &= out.strides[k][p] == in.strides[k][u(d)] * in.dims[u(d)];
      if (mergeable) {
        out.dims[p] *= in.dims[u(d)];
        for (std::size_t k = 0; k < K; ++k) out.strides[k][p] = in.strides[k][u(d)];
        continue;
      }
    }
    out.dims[u(out.rank)] = in.dims[u(d)];
    for (std::size_t k = 0; k < K; ++k) out.strides[k][u(out.rank)] = in.strides[k][u(d)];
    ++out.rank;
  }
  if (out.rank == 0) {
    out.rank = 1;
    out.dims[0] = 1;
  }
  return out;
}

// Calls f(offsets) for rows [begin, end) of the nest in row-major order.
template <int K, class F>
void walk_rows(const Nest<K>& nest, std::int64_t begin, std::int64_t end, F& f) {
  const int outer = nest.rank - 1;
  Dims index{};
  std::array<std::int64_t, K> offset{};
  std::int64_t rest = begin;
  for (int d = outer - 1; d >= 0; --d) {
    index[u(d)] = rest % nest.dims[u(d)];
    rest /= nest.dims[u(d)];
    for (std::size_t k = 0; k < K; ++k) offset[k] += index[u(d)] * nest.strides[k][u(d)];
  }
  for (std::int64_t row = begin; row < end; ++row) {
    f(offset);
    for (int d = outer - 1; d >= 0; --d) {
      for (std::size_t k = 0; k < K; ++k) offset[k] += nest.strides[k][u(d)];
      if (++index[u(d)] < nest.dims[u(d)]) break;
      for (std::size_t k = 0; k < K; ++k) offset[k] -= nest.strides[k][u(d)] * nest.dims[u(d)];
      index[u(d)] = 0;
    }
  }
}

// Walks every row, in parallel chunks when the nest is large. f must only write disjoint memory.
template <int K, class F>
void for_each_row(const Nest<K>& nest, F f) {
  const std::int64_t rows = nest.rows();
  const std::int64_t inner = std::max<std::int64_t>(nest.inner(), 1);
  const std::int64_t chunk = std::max<std::int64_t>(1, (kParallelElements / 4) / inner);
  const std::int64_t chunks = (rows + chunk - 1) / chunk;
  if (rows * inner < kParallelElements || chunks < 2) {
    walk_rows(nest, 0, rows, f);
    return;
  }
  for_each_index(chunks, true, [&](std::int64_t c) {
    walk_rows(nest, c * chunk, std::min(rows, c * chunk + chunk), f);
  });
}

// Copies the box of `extent` starting at src_begin in src (shaped src_shape) to the box starting
// at dst_begin in dst (shaped dst_shape).
template <class T>
void copy_box(const T* src, const Shape& src_shape, const Dims& src_begin, T* dst,
              const Shape& dst_shape, const Dims& dst_begin, const Shape& extent) {
  if (extent.num_elements() == 0) return;
  const Dims ss = strides_of(src_shape);
  const Dims ds = strides_of(dst_shape);
  Nest<2> nest;
  nest.rank = extent.rank();
  for (int d = 0; d < extent.rank(); ++d) {
    nest.dims[u(d)] = extent[d];
    nest.strides[0][u(d)] = ss[u(d)];
    nest.strides[1][u(d)] = ds[u(d)];
    src += src_begin[u(d)] * ss[u(d)];
    dst += dst_begin[u(d)] * ds[u(d)];
  }
  nest = simplify(nest);
  const std::int64_t n = nest.inner();
  const std::int64_t s0 = nest.inner_stride(0);
  const std::int64_t s1 = nest.inner_stride(1);
  for_each_row(nest, [&](const std::array<std::int64_t, 2>& off) {
    const T* from = src + off[0];
    T* to = dst + off[1];
    if (s0 == 1 && s1 == 1) {
      std::copy(from, from + n, to);
    } else {
      for (std::int64_t i = 0; i < n; ++i) to[i * s1] = from[i * s0];
    }
  });
}

// An n-d array filled with zeros of its dtype.
inline void zero_fill(Array& out) {
  if (out.size() > 0) std::memset(out.raw_mutable_data(), 0, out.nbytes());
}

// Records `op` with the single input x and an output of x's dtype.
inline Tensor record_one_input(const OpDef& op, const Tensor& x, Shape shape, std::any attrs,
                               std::string_view name = {}) {
  const Tensor inputs[] = {x};
  return x.graph().record1(op, inputs, {x.dtype(), std::move(shape)}, std::move(attrs), name);
}

}  // namespace ad::detail
