// Reductions: builders (axis checks, static shape rule), deterministic blockwise kernels, and
// gradients recorded as ops. The kernels view the input as merged runs of kept and reduced dims and
// take one of two loops: the innermost run reduced (contiguous runs summed into one output each,
// e.g. all axes, or {0, 2, 3} of NCHW) or kept (rows accumulated into a vector of outputs, e.g. all
// but the last axis of NHWC). Work is cut into blocks whose boundaries depend only on the shape,
// and partial results are combined in a fixed order, so results do not depend on the thread count.
#include "autodiff/ops/reduce.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/parallel_loops.h"

namespace ad {

namespace {

constexpr std::int64_t kBlock = 4096;          // elements reduced into one partial result
constexpr std::int64_t kSuperBlocks = 64;      // blocks folded into one partial of the row loop
constexpr std::int64_t kColumns = 256;         // outputs one task of the row loop accumulates
constexpr std::int64_t kParallelWork = 32768;  // fewer input elements: one thread
constexpr std::int64_t kManyTasks = 16;        // at least this many outputs: split over them
constexpr int kLanes = 8;
constexpr std::int64_t kNarrowWidth = 64;  // rows narrower than this are unrolled

struct ReduceAttrs {
  std::vector<int> axes{};  // sorted, distinct, in [0, rank)
  bool keepdims = false;
};

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

  void push(Dim d) {
    dims[static_cast<unsigned>(rank++)] = d;
    count *= d.size;
  }
  [[nodiscard]] std::int64_t offset(std::int64_t flat) const {
    std::int64_t off = 0;
    for (int i = rank - 1; i >= 0; --i) {
      const Dim& d = dims[static_cast<unsigned>(i)];
      off += (flat % d.size) * d.stride;
      flat /= d.size;
    }
    return off;
  }
};

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

// The input as (kept dims) x (reduced dims) x (an innermost contiguous run), size-1 dims dropped
// and neighbours reduced alike merged. Outputs are numbered in row-major order of the kept dims.
struct ReducePlan {
  DimList outer;   // kept dims, excluding the innermost run
  DimList middle;  // reduced dims, excluding the innermost run
  std::int64_t inner = 1;
  bool inner_reduced = true;

  [[nodiscard]] std::int64_t outputs() const { return outer.count * (inner_reduced ? 1 : inner); }
  [[nodiscard]] std::int64_t count() const { return middle.count * (inner_reduced ? inner : 1); }
};

ReducePlan make_plan(const Shape& shape, const std::vector<int>& axes) {
  std::array<bool, Shape::kMaxRank> reduced{};
  for (const int a : axes) reduced[static_cast<unsigned>(a)] = true;
  std::array<std::int64_t, Shape::kMaxRank> sizes{};
  std::array<bool, Shape::kMaxRank> flags{};
  int n = 0;
  for (int d = 0; d < shape.rank(); ++d) {
    const auto u = static_cast<unsigned>(d);
    if (shape[d] == 1) continue;
    if (n > 0 && flags[static_cast<unsigned>(n - 1)] == reduced[u]) {
      sizes[static_cast<unsigned>(n - 1)] *= shape[d];
    } else {
      sizes[static_cast<unsigned>(n)] = shape[d];
      flags[static_cast<unsigned>(n++)] = reduced[u];
    }
  }
  ReducePlan plan;
  if (n == 0) return plan;
  std::array<std::int64_t, Shape::kMaxRank> strides{};
  std::int64_t stride = 1;
  for (int i = n - 1; i >= 0; --i) {
    strides[static_cast<unsigned>(i)] = stride;
    stride *= sizes[static_cast<unsigned>(i)];
  }
  plan.inner = sizes[static_cast<unsigned>(n - 1)];
  plan.inner_reduced = flags[static_cast<unsigned>(n - 1)];
  for (int i = 0; i < n - 1; ++i) {
    const auto u = static_cast<unsigned>(i);
    (flags[u] ? plan.middle : plan.outer).push({sizes[u], strides[u]});
  }
  return plan;
}

Shape reduced_shape(const Shape& in, const std::vector<int>& axes, bool keepdims) {
  Shape out;
  std::size_t next = 0;
  for (int d = 0; d < in.rank(); ++d) {
    if (next < axes.size() && axes[next] == d) {
      ++next;
      if (keepdims) out.push_back(1);
    } else {
      out.push_back(in[d]);
    }
  }
  return out;
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
  thread_local std::vector<Acc> partials;
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
  thread_local std::vector<Acc> partials;
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

// ---- kernels ------------------------------------------------------------------------------------

std::string axes_string(const std::vector<int>& axes) {
  std::string s = "{";
  for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
  return s + "}";
}

// Allocates the output. With no input elements, fills it with `empty_value` (or fails, for
// reductions that have no value there) and returns false.
bool prepare(KernelContext& ctx, Array*& out, double empty_value, bool fail_when_empty) {
  const Array& x = ctx.input(0);
  const auto& attrs = ctx.attrs<ReduceAttrs>();
  out = &ctx.allocate_output(0, reduced_shape(x.shape(), attrs.axes, attrs.keepdims));
  if (x.size() != 0) return true;
  if (out->size() != 0) {
    if (fail_when_empty) {
      ctx.fail(str("cannot reduce over zero elements: input is ", x.shape(), ", axes ",
                   axes_string(attrs.axes), " (the result would have no value)"));
    }
    dispatch_all(out->dtype(), [&](auto tag) {
      using T = decltype(tag);
      auto y = out->mutable_data<T>();
      std::fill(y.begin(), y.end(), static_cast<T>(empty_value));
    });
  }
  return false;
}

template <template <class> class OpT>
void simple_reduce_kernel(KernelContext& ctx) {
  constexpr bool is_max_or_min =
      std::is_same_v<OpT<float>, MaxOp<float>> || std::is_same_v<OpT<float>, MinOp<float>>;
  const double empty = std::is_same_v<OpT<float>, ProdOp<float>> ? 1.0 : 0.0;
  Array* out = nullptr;
  if (!prepare(ctx, out, empty, is_max_or_min)) return;
  const Array& x = ctx.input(0);
  const ReducePlan plan = make_plan(x.shape(), ctx.attrs<ReduceAttrs>().axes);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("bool tensors cannot be reduced (cast them first)");
    } else {
      reduce_into(plan, x.data<T>().data(), out->mutable_data<T>().data(), OpT<T>{});
    }
  });
}

void mean_kernel(KernelContext& ctx) {
  const bool is_int = ctx.input(0).dtype() == DType::Int64;
  Array* out = nullptr;
  if (!prepare(ctx, out, std::numeric_limits<double>::quiet_NaN(), is_int)) return;
  const Array& x = ctx.input(0);
  const ReducePlan plan = make_plan(x.shape(), ctx.attrs<ReduceAttrs>().axes);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("bool tensors cannot be reduced (cast them first)");
    } else {
      MeanOp<T> op;
      op.count = plan.count();
      reduce_into(plan, x.data<T>().data(), out->mutable_data<T>().data(), op);
    }
  });
}

void logsumexp_kernel(KernelContext& ctx) {
  Array* out = nullptr;
  if (!prepare(ctx, out, -std::numeric_limits<double>::infinity(), false)) return;
  const Array& x = ctx.input(0);
  const ReducePlan plan = make_plan(x.shape(), ctx.attrs<ReduceAttrs>().axes);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    T* y = out->mutable_data<T>().data();
    reduce_into(plan, in, y, MaxOp<T>{});
    // An infinite or NaN max shifts by 0, as TF: all -inf gives -inf, any +inf gives +inf.
    for (std::int64_t i = 0; i < out->size(); ++i) {
      if (!std::isfinite(y[i])) y[i] = T{0};
    }
    ExpSumOp<T> op;
    op.shift = y;
    reduce_into(plan, in, y, op);
  });
}

// ---- argmax / argmin ----------------------------------------------------------------------------

struct ArgAttrs {
  int axis = 0;
  bool is_max = true;
};

// Whether v replaces the current best: strictly better, or the first NaN (NaN counts as extreme).
template <bool kMax, class T>
bool better(T v, T best) {
  if (is_nan(best)) return false;
  if (is_nan(v)) return true;
  return kMax ? v > best : v < best;
}

template <bool kMax, class T>
void arg_reduce(const T* x, std::int64_t* out, std::int64_t outer, std::int64_t len,
                std::int64_t inner) {
  const bool parallel = outer * len * inner >= kParallelWork;
  if (inner == 1) {
    detail::for_each_index(outer, parallel, [&](std::int64_t o) {
      const T* p = x + o * len;
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < len; ++i) {
        if (better<kMax>(p[i], p[best])) best = i;
      }
      out[o] = best;
    });
    return;
  }
  const std::int64_t chunks = (inner + kColumns - 1) / kColumns;
  detail::for_each_index(outer * chunks, parallel, [&](std::int64_t t) {
    const std::int64_t o = t / chunks;
    const std::int64_t c0 = (t % chunks) * kColumns;
    const std::int64_t w = std::min(kColumns, inner - c0);
    const T* base = x + o * len * inner + c0;
    std::array<T, kColumns> best{};
    std::int64_t* idx = out + o * inner + c0;
    for (std::int64_t j = 0; j < w; ++j) {
      best[static_cast<std::size_t>(j)] = base[j];
      idx[j] = 0;
    }
    for (std::int64_t i = 1; i < len; ++i) {
      const T* row = base + i * inner;
      for (std::int64_t j = 0; j < w; ++j) {
        if (better<kMax>(row[j], best[static_cast<std::size_t>(j)])) {
          best[static_cast<std::size_t>(j)] = row[j];
          idx[j] = i;
        }
      }
    }
  });
}

void arg_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& attrs = ctx.attrs<ArgAttrs>();
  Shape out_shape = x.shape();
  out_shape.erase(attrs.axis);
  Array& out = ctx.allocate_output(0, out_shape);
  const std::int64_t len = x.shape()[attrs.axis];
  if (out.size() == 0) return;
  if (len == 0) {
    ctx.fail(str("cannot take the ", attrs.is_max ? "argmax" : "argmin", " over axis ", attrs.axis,
                 " of size 0 (input is ", x.shape(), ")"));
  }
  std::int64_t outer = 1;
  for (int d = 0; d < attrs.axis; ++d) outer *= x.shape()[d];
  const std::int64_t inner = out.size() / outer;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("bool tensors are not supported");
    } else {
      const T* in = x.data<T>().data();
      std::int64_t* y = out.mutable_data<std::int64_t>().data();
      if (attrs.is_max) {
        arg_reduce<true>(in, y, outer, len, inner);
      } else {
        arg_reduce<false>(in, y, outer, len, inner);
      }
    }
  });
}

// ---- keepdims reshapes and the run-time count ---------------------------------------------------

struct ReshapeAttrs {
  std::vector<int> axes{};  // sorted positions of the size-1 dims in the expanded shape
  bool expand = true;
};

Shape expanded_shape(const Shape& in, const std::vector<int>& axes) {
  Shape out = in;
  for (const int a : axes) out.insert(a, 1);
  return out;
}

Shape squeezed_shape(const Shape& in, const std::vector<int>& axes) {
  Shape out = in;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) out.erase(*it);
  return out;
}

void keepdims_reshape_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& attrs = ctx.attrs<ReshapeAttrs>();
  if (!attrs.expand) {
    for (const int a : attrs.axes) {
      if (x.shape()[a] != 1) {
        ctx.fail(str("dim ", a, " of ", x.shape(), " is ", x.shape()[a], ", not 1"));
      }
    }
  }
  ctx.set_output(0, x.reshaped(attrs.expand ? expanded_shape(x.shape(), attrs.axes)
                                            : squeezed_shape(x.shape(), attrs.axes)));
}

Tensor keepdims_reshape(const Tensor& x, const std::vector<int>& axes, bool expand);

void keepdims_reshape_gradient(GradContext& g) {
  const auto& attrs = g.attrs<ReshapeAttrs>();
  g.set(0, keepdims_reshape(g.grad_output(0), attrs.axes, !attrs.expand));
}

void reduced_count_kernel(KernelContext& ctx) {
  const Shape& shape = ctx.input(0).shape();
  std::int64_t n = 1;
  for (const int a : ctx.attrs<ReduceAttrs>().axes) n *= shape[a];
  Array& out = ctx.allocate_output(0, Shape{});
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    out.mutable_data<T>()[0] = static_cast<T>(n);
  });
}

const OpDef kExpandReducedDimsOp{.name = "ExpandReducedDims",
                                 .kernel = keepdims_reshape_kernel,
                                 .gradient = keepdims_reshape_gradient};
const OpDef kSqueezeReducedDimsOp{.name = "SqueezeReducedDims",
                                  .kernel = keepdims_reshape_kernel,
                                  .gradient = keepdims_reshape_gradient};
const OpDef kReducedCountOp{.name = "ReducedCount", .kernel = reduced_count_kernel};

Tensor keepdims_reshape(const Tensor& x, const std::vector<int>& axes, bool expand) {
  if (axes.empty()) return x;
  const Tensor inputs[] = {x};
  const Shape shape = expand ? expanded_shape(x.shape(), axes) : squeezed_shape(x.shape(), axes);
  return x.graph().record1(expand ? kExpandReducedDimsOp : kSqueezeReducedDimsOp, inputs,
                           {x.dtype(), shape}, ReshapeAttrs{axes, expand});
}

// ---- gradients ----------------------------------------------------------------------------------

// A tensor shaped like the reduction's output, in the keepdims shape (broadcastable against x).
Tensor kept(const GradContext& g, const Tensor& t) {
  const auto& attrs = g.attrs<ReduceAttrs>();
  return attrs.keepdims ? t : keepdims_reshape(t, attrs.axes, true);
}

void sum_gradient(GradContext& g) {
  g.set(0, broadcast_like(kept(g, g.grad_output(0)), g.input(0)));
}

void mean_gradient(GradContext& g) {
  const Tensor x = g.input(0);
  const Tensor scaled =
      div(g.grad_output(0), detail::reduced_count(x, g.attrs<ReduceAttrs>().axes));
  g.set(0, broadcast_like(kept(g, scaled), x));
}

// As TF: the gradient goes to every element equal to the extremum, split evenly between ties.
void max_min_gradient(GradContext& g) {
  const Tensor x = g.input(0);
  const Tensor hits = cast(equal(x, kept(g, g.output(0))), x.dtype());
  const Tensor ties = reduce_sum(hits, g.attrs<ReduceAttrs>().axes, true);
  g.set(0, mul(div(hits, ties), kept(g, g.grad_output(0))));
}

// d prod / d x_i = prod / x_i: exact where x_i != 0.
void prod_gradient(GradContext& g) {
  g.set(0, div(kept(g, mul(g.grad_output(0), g.output(0))), g.input(0)));
}

// d logsumexp / d x = softmax(x) = exp(x - logsumexp(x)).
void logsumexp_gradient(GradContext& g) {
  const Tensor x = g.input(0);
  g.set(0, mul(kept(g, g.grad_output(0)), exp(sub(x, kept(g, g.output(0))))));
}

const OpDef kSumOp{.name = "Sum", .kernel = simple_reduce_kernel<SumOp>, .gradient = sum_gradient};
const OpDef kMeanOp{.name = "Mean", .kernel = mean_kernel, .gradient = mean_gradient};
const OpDef kMaxOp{
    .name = "Max", .kernel = simple_reduce_kernel<MaxOp>, .gradient = max_min_gradient};
const OpDef kMinOp{
    .name = "Min", .kernel = simple_reduce_kernel<MinOp>, .gradient = max_min_gradient};
const OpDef kProdOp{
    .name = "Prod", .kernel = simple_reduce_kernel<ProdOp>, .gradient = prod_gradient};
const OpDef kLogSumExpOp{
    .name = "ReduceLogSumExp", .kernel = logsumexp_kernel, .gradient = logsumexp_gradient};
const OpDef kArgMaxOp{.name = "ArgMax", .kernel = arg_kernel};
const OpDef kArgMinOp{.name = "ArgMin", .kernel = arg_kernel};

// ---- builders -----------------------------------------------------------------------------------

void check_input(const char* op, const std::string& node, const Tensor& x, bool allow_int) {
  if (!x) throw ValueError(str(op, " '", node, "': the input is an empty Tensor"));
  const DType t = x.dtype();
  if (is_floating(t) || (allow_int && t == DType::Int64)) return;
  throw ValueError(str(op, " '", node, "': '", x.name(), "' is ", t, x.shape(), "; expected ",
                       allow_int ? "float32, float64 or int64" : "float32 or float64",
                       t == DType::Bool ? " (cast it first)" : ""));
}

Tensor record_reduce(const OpDef& def, const char* op, const Tensor& x,
                     const std::vector<int>& axes, bool keepdims, bool allow_int) {
  const std::string node = x ? x.graph().unique_name(def.name, false) : std::string(def.name);
  check_input(op, node, x, allow_int);
  ReduceAttrs attrs{detail::resolve_axes(op, node, x, axes), keepdims};
  const Shape shape = reduced_shape(x.shape(), attrs.axes, keepdims);
  const Tensor inputs[] = {x};
  return x.graph().record1(def, inputs, {x.dtype(), shape}, std::move(attrs));
}

Tensor record_arg(const OpDef& def, const char* op, const Tensor& x, int axis, bool is_max) {
  const std::string node = x ? x.graph().unique_name(def.name, false) : std::string(def.name);
  check_input(op, node, x, true);
  const int rank = x.shape().rank();
  if (axis < -rank || axis >= rank) {
    throw ValueError(str(op, " '", node, "': axis ", axis, " is out of range for input of shape ",
                         x.shape(), rank == 0 ? " (a scalar has no axes)" : "",
                         rank == 0 ? "" : str(" (valid: ", -rank, " to ", rank - 1, ")")));
  }
  const int resolved = axis < 0 ? axis + rank : axis;
  Shape shape = x.shape();
  shape.erase(resolved);
  const Tensor inputs[] = {x};
  return x.graph().record1(def, inputs, {DType::Int64, shape}, ArgAttrs{resolved, is_max});
}

}  // namespace

namespace detail {

std::vector<int> resolve_axes(const char* op, const std::string& node, const Tensor& x,
                              const std::vector<int>& axes) {
  const int rank = x.shape().rank();
  std::vector<int> resolved;
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) resolved.push_back(d);
    return resolved;
  }
  for (const int a : axes) {
    const int r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) {
      throw ValueError(str(op, " '", node, "': axis ", a, " is out of range for input of shape ",
                           x.shape(),
                           rank == 0 ? std::string(" (a scalar has no axes; pass no axes)")
                                     : str(" (valid: ", -rank, " to ", rank - 1, ")")));
    }
    if (std::find(resolved.begin(), resolved.end(), r) != resolved.end()) {
      throw ValueError(str(op, " '", node, "': axis ", a, " is repeated in ", axes_string(axes),
                           " for input of shape ", x.shape(), " (each axis may appear once)"));
    }
    resolved.push_back(r);
  }
  std::sort(resolved.begin(), resolved.end());
  return resolved;
}

Tensor expand_reduced_dims(const Tensor& x, const std::vector<int>& axes) {
  return keepdims_reshape(x, axes, true);
}

Tensor squeeze_reduced_dims(const Tensor& x, const std::vector<int>& axes) {
  return keepdims_reshape(x, axes, false);
}

Tensor reduced_count(const Tensor& x, const std::vector<int>& axes) {
  std::int64_t n = 1;
  for (const int a : axes) {
    if (x.shape()[a] < 0) {
      const Tensor inputs[] = {x};
      return x.graph().record1(kReducedCountOp, inputs, {x.dtype(), Shape{}},
                               ReduceAttrs{axes, false});
    }
    n *= x.shape()[a];
  }
  return scalar_like(x, static_cast<double>(n));
}

}  // namespace detail

Tensor reduce_sum(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kSumOp, "reduce_sum", x, axes, keepdims, true);
}
Tensor reduce_mean(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kMeanOp, "reduce_mean", x, axes, keepdims, true);
}
Tensor reduce_max(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kMaxOp, "reduce_max", x, axes, keepdims, true);
}
Tensor reduce_min(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kMinOp, "reduce_min", x, axes, keepdims, true);
}
Tensor reduce_prod(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kProdOp, "reduce_prod", x, axes, keepdims, true);
}
Tensor reduce_logsumexp(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return record_reduce(kLogSumExpOp, "reduce_logsumexp", x, axes, keepdims, false);
}
Tensor argmax(const Tensor& x, int axis) { return record_arg(kArgMaxOp, "argmax", x, axis, true); }
Tensor argmin(const Tensor& x, int axis) { return record_arg(kArgMinOp, "argmin", x, axis, false); }

}  // namespace ad
