// Internal: the deterministic machinery behind the reductions in reduce.cpp. The input is viewed
// as merged runs of kept and reduced dims (a ReducePlan) and reduced by one of two loops: the
// innermost run reduced (contiguous runs summed into one output each, e.g. all axes, or {0, 2, 3}
// of NCHW) or kept (rows accumulated into a vector of outputs, e.g. all but the last axis of NHWC).
// Work is cut into blocks whose boundaries depend only on the shape, and partial results are
// combined in a fixed order (kLanes accumulators folded pairwise), so results do not depend on the
// thread count or the vector width. A reduction is a policy: Acc, identity(), map(v, o),
// combine(a, b) and finish(acc, o), o being the output index.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "autodiff/ops/internal/isa_dispatch.h"
#include "autodiff/ops/internal/kernel_vector.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/shape.h"

namespace ad::detail::reduction {

constexpr std::int64_t kBlock = 4096;          // elements reduced into one partial result
constexpr std::int64_t kSuperBlocks = 64;      // blocks folded into one partial of the row loop
constexpr std::int64_t kColumns = 256;         // outputs one task of the row loop accumulates
constexpr std::int64_t kParallelWork = 32768;  // fewer input elements: one thread
constexpr std::int64_t kManyTasks = 16;        // at least this many outputs: split over them
constexpr int kLanes = 8;
constexpr std::int64_t kNarrowWidth = 64;  // rows narrower than this are unrolled

// ---- run-time plan ------------------------------------------------------------------------------

struct Dim {
  std::int64_t size = 1;
  std::int64_t stride = 1;
};

// A few strided dims walked as one flat index.
struct DimList {
  std::array<Dim, Shape::kMaxRank> dims{};
  int rank = 0;
  std::int64_t count = 1;

  [[gnu::always_inline]] void push(Dim d) {
    dims[static_cast<unsigned>(rank++)] = d;
    count *= d.size;
  }
  [[nodiscard, gnu::always_inline]] std::int64_t offset(std::int64_t flat) const {
    std::int64_t off = 0;
    for (int i = rank - 1; i >= 0; --i) {
      const Dim& d = dims[static_cast<unsigned>(i)];
      off += (flat % d.size) * d.stride;
      flat /= d.size;
    }
    return off;
  }
};

// The input as (kept dims) x (reduced dims) x (an innermost contiguous run), size-1 dims dropped
// and neighbours reduced alike merged. Outputs are numbered in row-major order of the kept dims.
struct ReducePlan {
  DimList outer;   // kept dims, excluding the innermost run
  DimList middle;  // reduced dims, excluding the innermost run
  std::int64_t inner = 1;
  bool inner_reduced = true;

  [[nodiscard, gnu::always_inline]] std::int64_t outputs() const {
    return outer.count * (inner_reduced ? 1 : inner);
  }
  [[nodiscard, gnu::always_inline]] std::int64_t count() const {
    return middle.count * (inner_reduced ? inner : 1);
  }
};

ReducePlan make_plan(const Shape& shape, const std::vector<int>& axes);
// The shape of the result: the reduced axes dropped, or kept as 1 with keepdims.
Shape reduced_shape(const Shape& in, const std::vector<int>& axes, bool keepdims);

}  // namespace ad::detail::reduction

// The float and double reductions compiled per instruction set (autodiff/ops/isa/reduce.cpp):
// sum, mean (sum / count), max and min with the policies below, as reduce_into computes them.
GRADTAPE_ISA_DECLARE(
    template <class T>
    void reduce_sum(const ad::detail::reduction::ReducePlan& plan, const T* x, T* out);
    template <class T>
    void reduce_mean(const ad::detail::reduction::ReducePlan& plan, const T* x, T* out);
    template <class T>
    void reduce_max(const ad::detail::reduction::ReducePlan& plan, const T* x, T* out);
    template <class T>
    void reduce_min(const ad::detail::reduction::ReducePlan& plan, const T* x, T* out);)

namespace ad::detail::reduction {

// The loops and policies: templates compiled per instruction set (see isa_dispatch.h).
inline namespace GRADTAPE_KERNEL_NS {

// Walks a DimList in order from a flat index, one increment at a time.
class Odometer {
 public:
  Odometer(const DimList& list, std::int64_t flat) : list_(list), offset_(list.offset(flat)) {
    for (int i = list.rank - 1; i >= 0; --i) {
      const auto u = static_cast<unsigned>(i);
      index_[u] = flat % list.dims[u].size;
      flat /= list.dims[u].size;
    }
  }
  [[nodiscard]] std::int64_t offset() const { return offset_; }
  void next() {
    for (int i = list_.rank - 1; i >= 0; --i) {
      const auto u = static_cast<unsigned>(i);
      offset_ += list_.dims[u].stride;
      if (++index_[u] < list_.dims[u].size) return;
      offset_ -= list_.dims[u].stride * list_.dims[u].size;
      index_[u] = 0;
    }
  }

 private:
  const DimList& list_;
  std::int64_t offset_;
  std::array<std::int64_t, Shape::kMaxRank> index_{};
};

// kLanes independent accumulators folded in a fixed order: the loop vectorizes, and the result
// depends only on where a block starts and ends.
template <class Op>
struct Lanes {
  using Acc = typename Op::Acc;
  std::array<Acc, kLanes> lane;

  Lanes() { lane.fill(Op::identity()); }
  template <class T>
  void add(const Op& op, const T* p, std::int64_t n, std::int64_t o) {
    std::array<Acc, kLanes> l = lane;
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
      for (int k = 0; k < kLanes; ++k) {
        l[static_cast<unsigned>(k)] = Op::combine(l[static_cast<unsigned>(k)], op.map(p[i + k], o));
      }
    }
    for (int k = 0; i + k < n; ++k) {
      l[static_cast<unsigned>(k)] = Op::combine(l[static_cast<unsigned>(k)], op.map(p[i + k], o));
    }
    lane = l;
  }
  [[nodiscard]] Acc fold() const {
    const Acc a = Op::combine(Op::combine(lane[0], lane[1]), Op::combine(lane[2], lane[3]));
    const Acc b = Op::combine(Op::combine(lane[4], lane[5]), Op::combine(lane[6], lane[7]));
    return Op::combine(a, b);
  }
};

// ---- loop 1: the innermost run is reduced -------------------------------------------------------
// Each output reduces middle.count runs of `inner` contiguous elements. A block is a kBlock-long
// piece of one run, or several whole runs when runs are short; an output is the in-order fold of
// its blocks' partials, whether the blocks ran on one thread or many.

template <class T, class Op>
void reduce_runs(const ReducePlan& plan, const T* x, T* out, const Op& op) {
  using Acc = typename Op::Acc;
  const std::int64_t runs = plan.middle.count;
  const std::int64_t len = plan.inner;
  const bool split = len >= kBlock;
  const std::int64_t chunks = split ? (len + kBlock - 1) / kBlock : 1;
  const std::int64_t group = split ? 1 : std::max<std::int64_t>(1, kBlock / len);
  const std::int64_t blocks = split ? runs * chunks : (runs + group - 1) / group;
  const std::int64_t outputs = plan.outputs();
  const bool parallel = outputs * plan.count() >= kParallelWork;

  auto block = [&](std::int64_t base, std::int64_t o, std::int64_t b) -> Acc {
    Lanes<Op> lanes;
    if (split) {
      const std::int64_t begin = (b % chunks) * kBlock;
      const T* p = x + base + plan.middle.offset(b / chunks) + begin;
      lanes.add(op, p, std::min(kBlock, len - begin), o);
    } else {
      const std::int64_t first = b * group;
      const std::int64_t last = std::min(runs, first + group);
      Odometer run(plan.middle, first);
      for (std::int64_t r = first; r < last; ++r, run.next()) {
        lanes.add(op, x + base + run.offset(), len, o);
      }
    }
    return lanes.fold();
  };

  if (outputs >= kManyTasks || blocks == 1) {
    detail::for_each_index(outputs, parallel, [&](std::int64_t o) {
      const std::int64_t base = plan.outer.offset(o);
      Acc total = Op::identity();
      for (std::int64_t b = 0; b < blocks; ++b) total = Op::combine(total, block(base, o, b));
      out[o] = op.finish(total, o);
    });
    return;
  }
  thread_local KernelVector<Acc> partials;
  partials.resize(static_cast<std::size_t>(blocks));
  Acc* part = partials.data();
  for (std::int64_t o = 0; o < outputs; ++o) {
    const std::int64_t base = plan.outer.offset(o);
    detail::for_each_index(blocks, parallel, [&](std::int64_t b) { part[b] = block(base, o, b); });
    Acc total = Op::identity();
    for (std::int64_t b = 0; b < blocks; ++b) total = Op::combine(total, part[b]);
    out[o] = op.finish(total, o);
  }
}

// ---- loop 2: the innermost run is kept ----------------------------------------------------------
// Each outer index o owns `inner` contiguous outputs; the middle.count rows are added into them
// one row at a time (vectorized across the outputs). Rows are grouped into blocks of about kBlock
// elements, blocks into super-blocks of kSuperBlocks; block partials fold into super-block partials
// and those into the total, always in row order.

template <class T, class Op>
void reduce_rows(const ReducePlan& plan, const T* x, T* out, const Op& op) {
  using Acc = typename Op::Acc;
  const std::int64_t rows = plan.middle.count;
  const std::int64_t width = plan.inner;
  const std::int64_t block_rows = std::max<std::int64_t>(1, kBlock / width);
  const std::int64_t super_rows = block_rows * kSuperBlocks;
  const std::int64_t supers = (rows + super_rows - 1) / super_rows;
  const std::int64_t column_chunks = (width + kColumns - 1) / kColumns;
  const std::int64_t tasks = plan.outer.count * column_chunks;
  const bool parallel = plan.outputs() * rows >= kParallelWork;

  // Narrow rows stored back to back (NHWC with 3 channels, [batch, 4] features): `unroll` rows
  // are accumulated as one wide row, which keeps the loop vectorizable, and folded per block.
  const bool narrow =
      width < kNarrowWidth && plan.middle.rank == 1 && plan.middle.dims[0].stride == width;
  const std::int64_t unroll = kNarrowWidth / std::max<std::int64_t>(1, width);
  const std::int64_t wide = unroll * width;
  auto narrow_block = [&](const T* p, std::int64_t n, std::int64_t first_out, Acc* part) {
    std::array<Acc, kNarrowWidth> lanes{};
    std::array<std::int64_t, kNarrowWidth> index{};
    for (std::int64_t j = 0; j < wide; ++j) {
      lanes[static_cast<std::size_t>(j)] = Op::identity();
      index[static_cast<std::size_t>(j)] = first_out + j % width;
    }
    Acc* l = lanes.data();
    const std::int64_t* ix = index.data();
    std::int64_t e = 0;
    for (; e + wide <= n; e += wide) {
#pragma omp simd
      for (std::int64_t j = 0; j < wide; ++j) l[j] = Op::combine(l[j], op.map(p[e + j], ix[j]));
    }
    for (std::int64_t j = 0; e + j < n; ++j) l[j] = Op::combine(l[j], op.map(p[e + j], ix[j]));
    for (std::int64_t u = 0; u < unroll; ++u) {
      for (std::int64_t c = 0; c < width; ++c) part[c] = Op::combine(part[c], l[u * width + c]);
    }
  };

  // Folds rows [s * super_rows, ...) of columns [c0, c0 + w) of task o into acc[0, w).
  auto super_block = [&](std::int64_t base, std::int64_t first_out, std::int64_t c0, std::int64_t w,
                         std::int64_t s, Acc* acc) {
    std::array<Acc, kColumns> part{};
    std::fill(acc, acc + w, Op::identity());
    const std::int64_t first = s * super_rows;
    const std::int64_t last = std::min(rows, first + super_rows);
    if (narrow) {
      for (std::int64_t b = first; b < last; b += block_rows) {
        std::fill(part.begin(), part.begin() + w, Op::identity());
        const std::int64_t n = (std::min(last, b + block_rows) - b) * width;
        narrow_block(x + base + b * width, n, first_out, part.data());
        for (std::int64_t j = 0; j < w; ++j) {
          acc[j] = Op::combine(acc[j], part[static_cast<std::size_t>(j)]);
        }
      }
      return;
    }
    Odometer row(plan.middle, first);
    for (std::int64_t b = first; b < last; b += block_rows) {
      std::fill(part.begin(), part.begin() + w, Op::identity());
      Acc* pa = part.data();
      for (std::int64_t r = b; r < std::min(last, b + block_rows); ++r, row.next()) {
        const T* p = x + base + row.offset() + c0;
#pragma omp simd
        for (std::int64_t j = 0; j < w; ++j)
          pa[j] = Op::combine(pa[j], op.map(p[j], first_out + j));
      }
#pragma omp simd
      for (std::int64_t j = 0; j < w; ++j) acc[j] = Op::combine(acc[j], pa[j]);
    }
  };
  auto task_geometry = [&](std::int64_t t, std::int64_t& base, std::int64_t& first_out,
                           std::int64_t& c0, std::int64_t& w) {
    const std::int64_t o = t / column_chunks;
    c0 = (t % column_chunks) * kColumns;
    w = std::min(kColumns, width - c0);
    base = plan.outer.offset(o);
    first_out = o * width + c0;
  };

  if (tasks >= kManyTasks || supers == 1) {
    detail::for_each_index(tasks, parallel, [&](std::int64_t t) {
      std::int64_t base = 0, first_out = 0, c0 = 0, w = 0;
      task_geometry(t, base, first_out, c0, w);
      std::array<Acc, kColumns> total{};
      std::array<Acc, kColumns> super{};
      std::fill(total.begin(), total.begin() + w, Op::identity());
      for (std::int64_t s = 0; s < supers; ++s) {
        super_block(base, first_out, c0, w, s, super.data());
        for (std::int64_t j = 0; j < w; ++j) {
          total[static_cast<std::size_t>(j)] =
              Op::combine(total[static_cast<std::size_t>(j)], super[static_cast<std::size_t>(j)]);
        }
      }
      for (std::int64_t j = 0; j < w; ++j) {
        out[first_out + j] = op.finish(total[static_cast<std::size_t>(j)], first_out + j);
      }
    });
    return;
  }
  thread_local KernelVector<Acc> partials;
  partials.resize(static_cast<std::size_t>(supers * kColumns));
  Acc* part = partials.data();
  for (std::int64_t t = 0; t < tasks; ++t) {
    std::int64_t base = 0, first_out = 0, c0 = 0, w = 0;
    task_geometry(t, base, first_out, c0, w);
    detail::for_each_index(supers, parallel, [&](std::int64_t s) {
      super_block(base, first_out, c0, w, s, part + s * kColumns);
    });
    for (std::int64_t j = 0; j < w; ++j) {
      Acc total = Op::identity();
      for (std::int64_t s = 0; s < supers; ++s) total = Op::combine(total, part[s * kColumns + j]);
      out[first_out + j] = op.finish(total, first_out + j);
    }
  }
}

template <class T, class Op>
void reduce_into(const ReducePlan& plan, const T* x, T* out, const Op& op) {
  if (plan.inner_reduced) {
    reduce_runs(plan, x, out, op);
  } else {
    reduce_rows(plan, x, out, op);
  }
}

// ---- reduction policies -------------------------------------------------------------------------
// Each says how one element enters the accumulator (map), how accumulators combine, and how the
// total becomes the output (finish). map and finish see the output index, for logsumexp's shift.

template <class T>
using Wide = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

template <class T>
struct SumOp {
  using Acc = Wide<T>;
  static Acc identity() { return Acc{0}; }
  static Acc combine(Acc a, Acc b) { return a + b; }
  Acc map(T x, std::int64_t) const { return static_cast<Acc>(x); }
  T finish(Acc a, std::int64_t) const { return static_cast<T>(a); }
};

template <class T>
struct MeanOp : SumOp<T> {
  using Acc = Wide<T>;
  std::int64_t count = 1;
  T finish(Acc a, std::int64_t) const { return static_cast<T>(a / static_cast<Acc>(count)); }
};

template <class T>
struct ProdOp {
  using Acc = Wide<T>;
  static Acc identity() { return Acc{1}; }
  static Acc combine(Acc a, Acc b) { return a * b; }
  Acc map(T x, std::int64_t) const { return static_cast<Acc>(x); }
  T finish(Acc a, std::int64_t) const { return static_cast<T>(a); }
};

template <class T>
struct MaxOp {
  using Acc = T;
  static Acc identity() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    return std::numeric_limits<T>::lowest();
  }
  // NaN wins: once an accumulator is NaN, no comparison replaces it.
  static Acc combine(Acc a, Acc b) { return ((b > a) | is_nan(b)) ? b : a; }
  Acc map(T x, std::int64_t) const { return x; }
  T finish(Acc a, std::int64_t) const { return a; }
};

template <class T>
struct MinOp {
  using Acc = T;
  static Acc identity() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::infinity();
    return std::numeric_limits<T>::max();
  }
  static Acc combine(Acc a, Acc b) { return ((b < a) | is_nan(b)) ? b : a; }
  Acc map(T x, std::int64_t) const { return x; }
  T finish(Acc a, std::int64_t) const { return a; }
};

// Second pass of logsumexp: sum of exp(x - shift) with shift the (finite) max of each output;
// `shift` is the output buffer itself, holding the maxima until finish overwrites them.
template <class T>
struct ExpSumOp {
  using Acc = Wide<T>;
  const T* shift = nullptr;
  static Acc identity() { return Acc{0}; }
  static Acc combine(Acc a, Acc b) { return a + b; }
  Acc map(T x, std::int64_t o) const { return static_cast<Acc>(std::exp(x - shift[o])); }
  T finish(Acc a, std::int64_t o) const {
    return static_cast<T>(std::log(a) + static_cast<Acc>(shift[o]));
  }
};

}  // namespace GRADTAPE_KERNEL_NS

}  // namespace ad::detail::reduction
