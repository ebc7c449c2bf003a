// Shape and indexing ops: builders (checks + static shape rule), kernels and gradients. Shape-only
// ops (reshape, expand_dims, squeeze) alias their input; the others copy through strided loop
// nests whose inner loop is a contiguous run. Gradients that need an input's run-time shape take
// shape(x) rather than x itself, so x can be released before the backward pass.
#include "autodiff/ops/array.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <string>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

using detail::for_each_index;
using detail::kParallelElements;
using Dims = std::array<std::int64_t, Shape::kMaxRank>;
using Paddings = std::vector<std::pair<std::int64_t, std::int64_t>>;

std::size_t u(int i) { return static_cast<std::size_t>(i); }

// A zeroed per-thread scratch row of doubles for the scatter-adds, reused across runs.
double* zeroed_scratch(std::int64_t n) {
  thread_local std::vector<double> scratch;
  scratch.assign(static_cast<std::size_t>(n), 0.0);
  return scratch.data();
}

// "reshape 'Reshape'": the builder and the name its node will get, for build-time errors.
std::string label(Graph& graph, std::string_view fn, std::string_view node) {
  return str(fn, " '", graph.unique_name(node, false), "'");
}

void require_tensor(const Tensor& x, std::string_view fn) {
  if (!x) throw ValueError(str(fn, ": the input is an empty Tensor"));
}

Dims strides_of(const Shape& shape) {
  Dims strides{};
  std::int64_t stride = 1;
  for (int d = shape.rank() - 1; d >= 0; --d) {
    strides[u(d)] = stride;
    stride *= shape[d];
  }
  return strides;
}

std::string vector_string(std::span<const std::int64_t> values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
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
void zero_fill(Array& out) {
  if (out.size() > 0) std::memset(out.raw_mutable_data(), 0, out.nbytes());
}

// The run-time shape held by a 1-D Int64 shape tensor.
Shape shape_from_input(const KernelContext& ctx, int i) {
  const auto dims = ctx.input(i).data<std::int64_t>();
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] < 0)
      ctx.fail(str("dimension ", d, " of the shape ", vector_string(dims), " is negative"));
  }
  if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank))
    ctx.fail(str("rank ", dims.size(), " exceeds the supported maximum of ", Shape::kMaxRank));
  return Shape(dims);
}

// ---- reshape ------------------------------------------------------------------------------------

struct ReshapeAttrs {
  Shape shape;  // may hold one -1, resolved at run time
};

// `requested` with its -1 (if any) resolved against `input`; fails when the counts differ.
Shape resolve_reshape(const KernelContext& ctx, const Shape& input,
                      std::span<const std::int64_t> requested) {
  std::int64_t known = 1;
  int unknown = -1;
  for (std::size_t d = 0; d < requested.size(); ++d) {
    if (requested[d] == -1 && unknown < 0) {
      unknown = static_cast<int>(d);
    } else if (requested[d] < 0) {
      ctx.fail(str("the requested shape ", vector_string(requested),
                   " may hold non-negative dims and at most one -1"));
    } else {
      known *= requested[d];
    }
  }
  if (requested.size() > static_cast<std::size_t>(Shape::kMaxRank))
    ctx.fail(str("rank ", requested.size(), " exceeds the supported maximum of ", Shape::kMaxRank));
  std::vector<std::int64_t> dims(requested.begin(), requested.end());
  const std::int64_t count = input.num_elements();
  if (unknown >= 0) {
    if (known == 0 || count % known != 0) {
      ctx.fail(str("input ", input, " has ", count, " elements, which cannot be reshaped to ",
                   vector_string(requested), " (", count, " is not a multiple of ", known, ")"));
    }
    dims[u(unknown)] = count / known;
  } else if (known != count) {
    ctx.fail(str("input ", input, " has ", count, " elements but the requested shape ",
                 vector_string(requested), " has ", known));
  }
  return Shape(dims);
}

void reshape_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const Shape& requested = ctx.attrs<ReshapeAttrs>().shape;
  if (requested.is_fully_defined() && requested == x.shape()) {
    ctx.set_output(0, x);
    return;
  }
  ctx.set_output(0, x.reshaped(resolve_reshape(ctx, x.shape(), requested.dims())));
}

void reshape_by_tensor_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  ctx.set_output(0, x.reshaped(resolve_reshape(ctx, x.shape(), ctx.input(1).data<std::int64_t>())));
}

// dy reshaped to x's shape: static when x's shape is fully known, else through shape(x).
Tensor reshape_to_shape_of(const Tensor& dy, const Tensor& x) {
  if (x.shape().is_fully_defined()) {
    if (dy.shape() == x.shape()) return dy;
    return reshape(dy, x.shape());
  }
  return reshape(dy, shape(x));
}

void reshape_gradient(GradContext& g) {
  g.set(0, reshape_to_shape_of(g.grad_output(0), g.input(0)));
}

const OpDef kReshapeOp{.name = "Reshape", .kernel = reshape_kernel, .gradient = reshape_gradient};
const OpDef kReshapeByTensorOp{
    .name = "Reshape", .kernel = reshape_by_tensor_kernel, .gradient = reshape_gradient};

// ---- expand_dims, squeeze -----------------------------------------------------------------------

struct AxisAttrs {
  int axis = 0;
};
struct SqueezeAttrs {
  std::vector<int> axes;  // sorted
};

void expand_dims_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Shape shape = x.shape();
  shape.insert(ctx.attrs<AxisAttrs>().axis, 1);
  ctx.set_output(0, x.reshaped(shape));
}

void squeeze_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Shape shape = x.shape();
  const auto& axes = ctx.attrs<SqueezeAttrs>().axes;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
    if (shape[*it] != 1)
      ctx.fail(str("cannot squeeze axis ", *it, " of ", x.shape(), ": its size is not 1"));
    shape.erase(*it);
  }
  ctx.set_output(0, x.reshaped(shape));
}

const OpDef kExpandDimsOp{
    .name = "ExpandDims", .kernel = expand_dims_kernel, .gradient = reshape_gradient};
const OpDef kSqueezeOp{.name = "Squeeze", .kernel = squeeze_kernel, .gradient = reshape_gradient};

// ---- transpose ----------------------------------------------------------------------------------

struct TransposeAttrs {
  std::vector<int> perm;
};

// One tile of a 2-D transpose, out[i * out_row + j] = in[i + j * in_col] for i in [i0, i1) and
// j in [j0, j1): rows of `in` are read into a small buffer and rows of `out` written from it, so
// both sides move whole cache lines even when the strides are large powers of two (where a plain
// tiled loop thrashes the cache's sets).
template <class T, std::int64_t kTile>
void transpose_tile(const T* in, std::int64_t in_col, T* out, std::int64_t out_row, std::int64_t i0,
                    std::int64_t i1, std::int64_t j0, std::int64_t j1) {
  std::array<T, kTile * kTile> buffer;
  for (std::int64_t j = j0; j < j1; ++j) {
    const T* from = in + j * in_col;
    T* to = buffer.data() + (j - j0) * kTile - i0;
    for (std::int64_t i = i0; i < i1; ++i) to[i] = from[i];
  }
  for (std::int64_t i = i0; i < i1; ++i) {
    T* to = out + i * out_row;
    const T* from = buffer.data() + (i - i0) - j0 * kTile;
    for (std::int64_t j = j0; j < j1; ++j) to[j] = from[j * kTile];
  }
}

// Transposes through the nest (output-ordered dims, strides {input, output}). When the output's
// inner dim is contiguous in the input too, it copies runs; otherwise the input's contiguous dim
// k and the output's inner dim form 2-D planes, transposed tile by tile for every index of the
// other dims.
template <class T>
void transpose_into(const T* in, T* out, const Nest<2>& nest) {
  const int last = nest.rank - 1;
  const auto& in_strides = nest.strides[0];
  const auto& out_strides = nest.strides[1];
  if (in_strides[u(last)] == 1) {
    const std::int64_t n = nest.inner();
    for_each_row(nest, [&](const std::array<std::int64_t, 2>& off) {
      std::copy(in + off[0], in + off[0] + n, out + off[1]);
    });
    return;
  }
  const int k =
      static_cast<int>(std::find(in_strides.begin(), in_strides.begin() + last, std::int64_t{1}) -
                       in_strides.begin());
  std::vector<int> others;
  std::int64_t planes = 1;
  for (int d = 0; d < last; ++d) {
    if (d == k) continue;
    others.push_back(d);
    planes *= nest.dims[u(d)];
  }
  constexpr std::int64_t kTile = sizeof(T) >= 8 ? 32 : 64;
  const std::int64_t rows = nest.dims[u(k)];
  const std::int64_t cols = nest.inner();
  const std::int64_t row_tiles = (rows + kTile - 1) / kTile;
  const std::int64_t tasks = planes * row_tiles;
  for_each_index(tasks, planes * rows * cols >= kParallelElements, [&](std::int64_t t) {
    std::int64_t rest = t / row_tiles;
    std::int64_t in_offset = 0;
    std::int64_t out_offset = 0;
    for (auto d = others.rbegin(); d != others.rend(); ++d) {
      const auto du = u(*d);
      const std::int64_t index = rest % nest.dims[du];
      rest /= nest.dims[du];
      in_offset += index * in_strides[du];
      out_offset += index * out_strides[du];
    }
    const std::int64_t i0 = (t % row_tiles) * kTile;
    const std::int64_t i1 = std::min(rows, i0 + kTile);
    for (std::int64_t j0 = 0; j0 < cols; j0 += kTile) {
      transpose_tile<T, kTile>(in + in_offset, in_strides[u(last)], out + out_offset,
                               out_strides[u(k)], i0, i1, j0, std::min(cols, j0 + kTile));
    }
  });
}

void transpose_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& perm = ctx.attrs<TransposeAttrs>().perm;
  const Dims in_strides = strides_of(x.shape());
  Shape shape;
  for (int p : perm) shape.push_back(x.shape()[p]);
  const Dims out_strides = strides_of(shape);
  Nest<2> nest;
  nest.rank = x.rank();
  for (int d = 0; d < x.rank(); ++d) {
    nest.dims[u(d)] = shape[d];
    nest.strides[0][u(d)] = in_strides[u(perm[u(d)])];
    nest.strides[1][u(d)] = out_strides[u(d)];
  }
  nest = simplify(nest);
  if (x.size() == 0 || (nest.rank == 1 && nest.inner_stride(0) == 1)) {
    ctx.set_output(0, x.reshaped(shape));  // the permutation keeps the memory order
    return;
  }
  Array& out = ctx.allocate_output(0, shape);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    transpose_into(x.data<T>().data(), out.mutable_data<T>().data(), nest);
  });
}

void transpose_gradient(GradContext& g) {
  const auto& perm = g.attrs<TransposeAttrs>().perm;
  std::vector<int> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[u(perm[i])] = static_cast<int>(i);
  g.set(0, transpose(g.grad_output(0), inverse));
}

const OpDef kTransposeOp{
    .name = "Transpose", .kernel = transpose_kernel, .gradient = transpose_gradient};

// ---- broadcast_to -------------------------------------------------------------------------------

void broadcast_to_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const Shape& target = ctx.node().outputs[0].shape;
  for (int d = 0; d < x.rank(); ++d) {
    const std::int64_t t = target[target.rank() - x.rank() + d];
    if (x.shape()[d] != 1 && x.shape()[d] != t)
      ctx.fail(str("cannot broadcast ", x.shape(), " to ", target));
  }
  if (x.shape() == target) {
    ctx.set_output(0, x);
    return;
  }
  Array& out = ctx.allocate_output(0, target);
  if (out.size() == 0) return;
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto plan = detail::make_broadcast_plan(target, x.shape(), x.shape());
    const T* src = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    detail::for_each_run(plan, [&](std::int64_t off, std::int64_t x_off, std::int64_t,
                                   std::int64_t n, std::int64_t sx, std::int64_t) {
      if (sx == 0) {
        std::fill(y + off, y + off + n, src[x_off]);
      } else {
        std::copy(src + x_off, src + x_off + n, y + off);
      }
    });
  });
}

void broadcast_to_gradient(GradContext& g) {
  g.set(0, sum_to_shape_of(g.grad_output(0), g.input(0)));
}

const OpDef kBroadcastToOp{
    .name = "BroadcastTo", .kernel = broadcast_to_kernel, .gradient = broadcast_to_gradient};

// ---- concat -------------------------------------------------------------------------------------

struct ConcatAttrs {
  int axis = 0;
};
struct ConcatPartAttrs {
  int axis = 0;
  int part = 0;
};

void concat_kernel(KernelContext& ctx) {
  const int axis = ctx.attrs<ConcatAttrs>().axis;
  const Shape& first = ctx.input(0).shape();
  Shape shape = first;
  shape[axis] = 0;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input(i).shape();
    for (int d = 0; d < s.rank(); ++d) {
      if (d != axis && s[d] != first[d]) {
        ctx.fail(str("input ", i, " has shape ", s, " but input 0 has ", first,
                     "; all dims except axis ", axis, " must agree"));
      }
    }
    shape[axis] += s[axis];
  }
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  std::int64_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  const std::int64_t out_row = out.size() / outer;
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* y = out.mutable_data<T>().data();
    std::int64_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Array& x = ctx.input(i);
      const std::int64_t row = x.size() / outer;
      const T* in = x.data<T>().data();
      for_each_index(outer, x.size() >= kParallelElements, [&](std::int64_t o) {
        std::copy(in + o * row, in + o * row + row, y + o * out_row + offset);
      });
      offset += row;
    }
  });
}

Tensor concat_part(const Tensor& dy, const std::vector<Tensor>& shapes, const Shape& part_shape,
                   int axis, int part);

void concat_gradient(GradContext& g) {
  const int axis = g.attrs<ConcatAttrs>().axis;
  const Tensor dy = g.grad_output(0);
  const int n = g.num_inputs();
  bool static_sizes = true;
  for (int i = 0; i < n; ++i) static_sizes &= g.input(i).shape()[axis] >= 0;
  std::vector<Tensor> shapes;
  if (!static_sizes) {
    for (int i = 0; i < n; ++i) shapes.push_back(shape(g.input(i)));
  }
  std::int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const Tensor x = g.input(i);
    if (g.wants(i)) {
      if (static_sizes) {
        std::vector<std::int64_t> begin(u(x.shape().rank()), 0);
        std::vector<std::int64_t> size(u(x.shape().rank()), -1);
        begin[u(axis)] = offset;
        size[u(axis)] = x.shape()[axis];
        g.set(i, slice(dy, begin, size));
      } else {
        g.set(i, concat_part(dy, shapes, x.shape(), axis, i));
      }
    }
    if (static_sizes) offset += x.shape()[axis];
  }
}

// Inputs: dy, then the run-time shapes of every concatenated tensor; output: dy's rows of `part`.
void concat_part_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<ConcatPartAttrs>();
  const Array& dy = ctx.input(0);
  std::int64_t offset = 0;
  for (int i = 0; i < attrs.part; ++i)
    offset += ctx.input(1 + i).data<std::int64_t>()[u(attrs.axis)];
  const Shape part = shape_from_input(ctx, 1 + attrs.part);
  if (part.rank() != dy.rank() || offset + part[attrs.axis] > dy.shape()[attrs.axis])
    ctx.fail(str("part ", part, " at offset ", offset, " does not fit in ", dy.shape()));
  Array& out = ctx.allocate_output(0, part);
  Dims begin{};
  begin[u(attrs.axis)] = offset;
  dispatch_all(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    copy_box(dy.data<T>().data(), dy.shape(), begin, out.mutable_data<T>().data(), part, Dims{},
             part);
  });
}

void concat_part_gradient(GradContext& g) {
  const auto& attrs = g.attrs<ConcatPartAttrs>();
  const Tensor ddy = g.grad_output(0);
  std::vector<Tensor> pieces;
  for (int i = 1; i < g.num_inputs(); ++i) {
    pieces.push_back(i - 1 == attrs.part ? ddy : fill(g.input(i), 0.0, ddy.dtype()));
  }
  g.set(0, concat(pieces, attrs.axis));
}

const OpDef kConcatOp{.name = "ConcatV2", .kernel = concat_kernel, .gradient = concat_gradient};
const OpDef kConcatPartOp{
    .name = "ConcatPart", .kernel = concat_part_kernel, .gradient = concat_part_gradient};

Tensor concat_part(const Tensor& dy, const std::vector<Tensor>& shapes, const Shape& part_shape,
                   int axis, int part) {
  std::vector<Tensor> inputs{dy};
  inputs.insert(inputs.end(), shapes.begin(), shapes.end());
  return dy.graph().record1(kConcatPartOp, inputs, {dy.dtype(), part_shape},
                            ConcatPartAttrs{axis, part}, "ConcatPart");
}

// ---- slice, pad and their gradients -------------------------------------------------------------

struct SliceAttrs {
  std::vector<std::int64_t> begin;
  std::vector<std::int64_t> size;  // -1: to the end
};
struct PadAttrs {
  Paddings paddings;
};

Dims to_dims(std::span<const std::int64_t> values) {
  Dims dims{};
  std::copy(values.begin(), values.end(), dims.begin());
  return dims;
}

void slice_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& attrs = ctx.attrs<SliceAttrs>();
  Shape extent;
  for (int d = 0; d < x.rank(); ++d) {
    const std::int64_t b = attrs.begin[u(d)];
    const std::int64_t s = attrs.size[u(d)] < 0 ? x.shape()[d] - b : attrs.size[u(d)];
    if (b > x.shape()[d] || s < 0 || b + s > x.shape()[d]) {
      ctx.fail(str("begin ", vector_string(attrs.begin), " and size ", vector_string(attrs.size),
                   " do not fit in ", x.shape(), " (dim ", d, ")"));
    }
    extent.push_back(s);
  }
  Array& out = ctx.allocate_output(0, extent);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    copy_box(x.data<T>().data(), x.shape(), to_dims(attrs.begin), out.mutable_data<T>().data(),
             extent, Dims{}, extent);
  });
}

// Inputs: dy and shape(x); output: zeros shaped like x with dy placed at `begin`.
void slice_grad_kernel(KernelContext& ctx) {
  const Array& dy = ctx.input(0);
  const auto& attrs = ctx.attrs<SliceAttrs>();
  const Shape shape = shape_from_input(ctx, 1);
  for (int d = 0; d < dy.rank(); ++d) {
    if (attrs.begin[u(d)] + dy.shape()[d] > shape[d])
      ctx.fail(str("gradient ", dy.shape(), " at ", vector_string(attrs.begin), " does not fit in ",
                   shape));
  }
  Array& out = ctx.allocate_output(0, shape);
  zero_fill(out);
  dispatch_all(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    copy_box(dy.data<T>().data(), dy.shape(), Dims{}, out.mutable_data<T>().data(), shape,
             to_dims(attrs.begin), dy.shape());
  });
}

void pad_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& paddings = ctx.attrs<PadAttrs>().paddings;
  Shape shape = x.shape();
  Dims before{};
  for (int d = 0; d < x.rank(); ++d) {
    shape[d] += paddings[u(d)].first + paddings[u(d)].second;
    before[u(d)] = paddings[u(d)].first;
  }
  Array& out = ctx.allocate_output(0, shape);
  zero_fill(out);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    copy_box(x.data<T>().data(), x.shape(), Dims{}, out.mutable_data<T>().data(), shape, before,
             x.shape());
  });
}

// Pad's gradient: dy without its padding.
void crop_kernel(KernelContext& ctx) {
  const Array& dy = ctx.input(0);
  const auto& paddings = ctx.attrs<PadAttrs>().paddings;
  Shape shape = dy.shape();
  Dims before{};
  for (int d = 0; d < dy.rank(); ++d) {
    shape[d] -= paddings[u(d)].first + paddings[u(d)].second;
    before[u(d)] = paddings[u(d)].first;
    if (shape[d] < 0) ctx.fail(str("cannot remove the padding from ", dy.shape()));
  }
  Array& out = ctx.allocate_output(0, shape);
  dispatch_all(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    copy_box(dy.data<T>().data(), dy.shape(), before, out.mutable_data<T>().data(), shape, Dims{},
             shape);
  });
}

Tensor slice_grad(const Tensor& dy, const Tensor& x, const SliceAttrs& attrs);
Tensor crop(const Tensor& dy, const Tensor& x, const Paddings& paddings);

void slice_gradient(GradContext& g) {
  g.set(0, slice_grad(g.grad_output(0), g.input(0), g.attrs<SliceAttrs>()));
}
void slice_grad_gradient(GradContext& g) {
  const auto& attrs = g.attrs<SliceAttrs>();
  g.set(0, slice(g.grad_output(0), attrs.begin, attrs.size));
}

void pad_gradient(GradContext& g) {
  g.set(0, crop(g.grad_output(0), g.input(0), g.attrs<PadAttrs>().paddings));
}
void crop_gradient(GradContext& g) {
  g.set(0, pad(g.grad_output(0), g.attrs<PadAttrs>().paddings));
}

const OpDef kSliceOp{.name = "Slice", .kernel = slice_kernel, .gradient = slice_gradient};
const OpDef kPadOp{.name = "Pad", .kernel = pad_kernel, .gradient = pad_gradient};
const OpDef kCropOp{.name = "Crop", .kernel = crop_kernel, .gradient = crop_gradient};
const OpDef kSliceGradOp{
    .name = "SliceGrad", .kernel = slice_grad_kernel, .gradient = slice_grad_gradient};

Tensor slice_grad(const Tensor& dy, const Tensor& x, const SliceAttrs& attrs) {
  const Tensor inputs[] = {dy, shape(x)};
  return dy.graph().record1(kSliceGradOp, inputs, {x.dtype(), x.shape()}, attrs, "SliceGrad");
}

Tensor crop(const Tensor& dy, const Tensor& x, const Paddings& paddings) {
  const Tensor inputs[] = {dy};
  return dy.graph().record1(kCropOp, inputs, {dy.dtype(), x.shape()}, PadAttrs{paddings}, "Crop");
}

// ---- gather -------------------------------------------------------------------------------------

// params viewed as [outer, n, inner] around the gather axis; indices as m values.
struct GatherDims {
  std::int64_t outer = 1;
  std::int64_t n = 1;
  std::int64_t inner = 1;
  std::int64_t m = 1;
};

GatherDims gather_dims(const Shape& params, int axis, std::int64_t m) {
  GatherDims g;
  for (int d = 0; d < params.rank(); ++d) {
    if (d < axis) g.outer *= params[d];
    if (d > axis) g.inner *= params[d];
  }
  g.n = params[axis];
  g.m = m;
  return g;
}

void check_indices(const KernelContext& ctx, const Array& indices, const Shape& params, int axis) {
  const std::int64_t n = params[axis];
  const auto idx = indices.data<std::int64_t>();
  for (std::size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] >= 0 && idx[i] < n) continue;
    std::vector<std::int64_t> position(u(indices.rank()));
    auto rest = static_cast<std::int64_t>(i);
    for (int d = indices.rank() - 1; d >= 0; --d) {
      position[u(d)] = rest % indices.shape()[d];
      rest /= indices.shape()[d];
    }
    ctx.fail(str("indices", vector_string(position), " = ", idx[i], " is not in [0, ", n,
                 ") (axis ", axis, " of params ", params, ")"));
  }
}

// params[:axis] + indices + params[axis+1:].
Shape gathered_shape(const Shape& params, const Shape& indices, int axis) {
  Shape shape;
  for (int d = 0; d < axis; ++d) shape.push_back(params[d]);
  for (auto d : indices.dims()) shape.push_back(d);
  for (int d = axis + 1; d < params.rank(); ++d) shape.push_back(params[d]);
  return shape;
}

void gather_kernel(KernelContext& ctx) {
  const Array& params = ctx.input(0);
  const Array& indices = ctx.input(1);
  const int axis = ctx.attrs<AxisAttrs>().axis;
  const GatherDims g = gather_dims(params.shape(), axis, indices.size());
  check_indices(ctx, indices, params.shape(), axis);
  Array& out = ctx.allocate_output(0, gathered_shape(params.shape(), indices.shape(), axis));
  const std::int64_t* idx = indices.data<std::int64_t>().data();
  dispatch_all(params.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = params.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t rows = g.outer * g.m;
    for_each_index(rows, rows * g.inner >= kParallelElements, [&](std::int64_t r) {
      const std::int64_t o = r / g.m;
      const T* from = in + (o * g.n + idx[r % g.m]) * g.inner;
      std::copy(from, from + g.inner, y + r * g.inner);
    });
  });
}

// Gather's gradient, an unsorted segment sum: zeros shaped like params plus, for each index, its
// row of dy. The indices are bucketed by target row (a counting sort), then threads split the
// output rows and each row adds its dy rows in index order, in double: no atomics, and the result
// is the same for any thread count.
template <class T>
void scatter_add(const T* dy, std::span<const std::int64_t> idx, const GatherDims& g, T* out) {
  std::vector<std::int64_t> start(static_cast<std::size_t>(g.n + 1), 0);
  for (auto i : idx) ++start[static_cast<std::size_t>(i + 1)];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<std::int64_t> order(idx.size());
  std::vector<std::int64_t> cursor(start.begin(), start.end() - 1);
  for (std::size_t j = 0; j < idx.size(); ++j)
    order[static_cast<std::size_t>(cursor[static_cast<std::size_t>(idx[j])]++)] =
        static_cast<std::int64_t>(j);
  const std::int64_t rows = g.outer * g.n;
  for_each_index(rows, g.outer * g.m * g.inner >= kParallelElements, [&](std::int64_t t) {
    const std::int64_t o = t / g.n;
    const auto r = static_cast<std::size_t>(t % g.n);
    double* a = zeroed_scratch(g.inner);
    for (std::int64_t k = start[r]; k < start[r + 1]; ++k) {
      const T* row = dy + (o * g.m + order[static_cast<std::size_t>(k)]) * g.inner;
#pragma omp simd
      for (std::int64_t c = 0; c < g.inner; ++c) a[c] += static_cast<double>(row[c]);
    }
    T* dst = out + t * g.inner;
    for (std::int64_t c = 0; c < g.inner; ++c) dst[c] = static_cast<T>(a[c]);
  });
}

void gather_grad_kernel(KernelContext& ctx) {
  const Array& dy = ctx.input(0);
  const Array& indices = ctx.input(1);
  const Shape shape = shape_from_input(ctx, 2);
  const int axis = ctx.attrs<AxisAttrs>().axis;
  const GatherDims g = gather_dims(shape, axis, indices.size());
  check_indices(ctx, indices, shape, axis);
  if (dy.size() != g.outer * g.m * g.inner)
    ctx.fail(str("gradient ", dy.shape(), " does not match params ", shape, " and indices ",
                 indices.shape()));
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  dispatch_floating(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    scatter_add(dy.data<T>().data(), indices.data<std::int64_t>(), g, out.mutable_data<T>().data());
  });
}

Tensor gather_grad(const Tensor& dy, const Tensor& indices, const Tensor& params, int axis);

void gather_gradient(GradContext& g) {
  g.set(0, gather_grad(g.grad_output(0), g.input(1), g.input(0), g.attrs<AxisAttrs>().axis));
}

void gather_grad_gradient(GradContext& g) {
  g.set(0, gather(g.grad_output(0), g.input(1), g.attrs<AxisAttrs>().axis));
}

const OpDef kGatherOp{.name = "GatherV2", .kernel = gather_kernel, .gradient = gather_gradient};
const OpDef kGatherGradOp{
    .name = "GatherGrad", .kernel = gather_grad_kernel, .gradient = gather_grad_gradient};

Tensor gather_grad(const Tensor& dy, const Tensor& indices, const Tensor& params, int axis) {
  const Tensor inputs[] = {dy, indices, shape(params)};
  return dy.graph().record1(kGatherGradOp, inputs, {params.dtype(), params.shape()},
                            AxisAttrs{axis}, "GatherGrad");
}

// ---- one_hot, where -----------------------------------------------------------------------------

struct OneHotAttrs {
  std::int64_t depth = 0;
  double on = 1;
  double off = 0;
};

void one_hot_kernel(KernelContext& ctx) {
  const Array& indices = ctx.input(0);
  const auto& attrs = ctx.attrs<OneHotAttrs>();
  Shape shape = indices.shape();
  shape.push_back(attrs.depth);
  Array& out = ctx.allocate_output(0, shape);
  const auto idx = indices.data<std::int64_t>();
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    std::fill(y.begin(), y.end(), static_cast<T>(attrs.off));
    for (std::size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] >= 0 && idx[i] < attrs.depth)
        y[i * static_cast<std::size_t>(attrs.depth) + static_cast<std::size_t>(idx[i])] =
            static_cast<T>(attrs.on);
    }
  });
}

const OpDef kOneHotOp{.name = "OneHot", .kernel = one_hot_kernel};

// Element strides of `s` broadcast (right-aligned) into `out`: 0 along broadcast dims.
Dims broadcast_strides(const Shape& s, const Shape& out) {
  const Dims own = strides_of(s);
  Dims strides{};
  for (int d = 0; d < s.rank(); ++d) {
    const int o = d + out.rank() - s.rank();
    strides[u(o)] = s[d] == 1 && out[o] != 1 ? 0 : own[u(d)];
  }
  return strides;
}

void where_kernel(KernelContext& ctx) {
  const Array& c = ctx.input(0);
  const Array& a = ctx.input(1);
  const Array& b = ctx.input(2);
  const auto broadcast = detail::broadcast_shapes({&c.shape(), &a.shape(), &b.shape()});
  if (!broadcast) {
    ctx.fail(str("shapes ", c.shape(), ", ", a.shape(), ", ", b.shape(),
                 " cannot be broadcast together"));
  }
  const Shape& shape = *broadcast;
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  Nest<4> nest;
  nest.rank = std::max(shape.rank(), 1);
  nest.dims.fill(1);
  const Array* operands[] = {&c, &a, &b};
  for (std::size_t k = 0; k < 3; ++k)
    nest.strides[k] = broadcast_strides(operands[k]->shape(), shape);
  nest.strides[3] = strides_of(shape);
  for (int d = 0; d < shape.rank(); ++d) nest.dims[u(d)] = shape[d];
  nest = simplify(nest);
  const bool* cond = c.data<bool>().data();
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.data<T>().data();
    const T* z = b.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t n = nest.inner();
    const std::int64_t sc = nest.inner_stride(0);
    const std::int64_t sa = nest.inner_stride(1);
    const std::int64_t sb = nest.inner_stride(2);
    for_each_row(nest, [&](const std::array<std::int64_t, 4>& off) {
      const bool* co = cond + off[0];
      const T* xo = x + off[1];
      const T* zo = z + off[2];
      T* yo = y + off[3];
      if (sc == 1 && sa == 1 && sb == 1) {
        // A select of two unconditional loads, with the condition read as bytes: GCC 12
        // vectorizes only that form (it has no vector type for bool loads, and does not speculate
        // a conditional load); the branchy scalar loop mispredicts on a random mask.
        const auto* cb = reinterpret_cast<const unsigned char*>(co);
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) {
          const T xv = xo[i];
          const T zv = zo[i];
          yo[i] = cb[i] != 0 ? xv : zv;
        }
      } else {
        for (std::int64_t i = 0; i < n; ++i) yo[i] = co[i * sc] ? xo[i * sa] : zo[i * sb];
      }
    });
  });
}

void where_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor zero = scalar_like(dy, 0.0);
  if (g.wants(1)) g.set(1, sum_to_shape_of(where(g.input(0), dy, zero), g.input(1)));
  if (g.wants(2)) g.set(2, sum_to_shape_of(where(g.input(0), zero, dy), g.input(2)));
}

const OpDef kWhereOp{.name = "SelectV2", .kernel = where_kernel, .gradient = where_gradient};

// ---- fill, shape, size --------------------------------------------------------------------------

struct FillAttrs {
  double value = 0;
};

void fill_array(Array& out, double value) {
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    std::fill(y.begin(), y.end(), static_cast<T>(value));
  });
}

void fill_kernel(KernelContext& ctx) {
  fill_array(ctx.allocate_output(0, ctx.node().outputs[0].shape), ctx.attrs<FillAttrs>().value);
}
void fill_by_tensor_kernel(KernelContext& ctx) {
  fill_array(ctx.allocate_output(0, shape_from_input(ctx, 0)), ctx.attrs<FillAttrs>().value);
}

void shape_kernel(KernelContext& ctx) {
  const Shape& s = ctx.input(0).shape();
  Array& out = ctx.allocate_output(0, Shape{s.rank()});
  std::copy(s.dims().begin(), s.dims().end(), out.mutable_data<std::int64_t>().begin());
}
void size_kernel(KernelContext& ctx) {
  ctx.allocate_output(0, Shape{}).mutable_data<std::int64_t>()[0] = ctx.input(0).size();
}

const OpDef kFillOp{.name = "Fill", .kernel = fill_kernel};
const OpDef kFillByTensorOp{.name = "Fill", .kernel = fill_by_tensor_kernel};
const OpDef kShapeOp{.name = "Shape", .kernel = shape_kernel};
const OpDef kSizeOp{.name = "Size", .kernel = size_kernel};

// ---- tile ---------------------------------------------------------------------------------------

struct TileAttrs {
  std::vector<std::int64_t> multiples;
};

// x's dims and multiples with each dim that is not tiled merged into its left neighbour (tiling
// [a, b] by [m, 1] repeats whole rows of a * b), so inner runs stay long. Rank >= 1.
struct TilePlan {
  int rank = 0;
  Dims dims{};
  Dims multiples{};
};

TilePlan tile_plan(const Shape& x, const std::vector<std::int64_t>& multiples) {
  TilePlan p;
  for (int d = 0; d < x.rank(); ++d) {
    if (p.rank > 0 && multiples[u(d)] == 1) {
      p.dims[u(p.rank - 1)] *= x[d];
      continue;
    }
    p.dims[u(p.rank)] = x[d];
    p.multiples[u(p.rank)] = multiples[u(d)];
    ++p.rank;
  }
  if (p.rank == 0) {
    p.rank = 1;
    p.dims[0] = 1;
    p.multiples[0] = 1;
  }
  return p;
}

// out[i] = x[i mod dims] per dim: each output row copies x's row `multiples[last]` times.
template <class T>
void tile_into(const T* x, const TilePlan& p, T* out) {
  const int last = p.rank - 1;
  const std::int64_t width = p.dims[u(last)];
  const std::int64_t out_width = width * p.multiples[u(last)];
  std::int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= p.dims[u(d)] * p.multiples[u(d)];
  Dims xs{};  // x's element stride of each outer dim
  std::int64_t stride = width;
  for (int d = last - 1; d >= 0; --d) {
    xs[u(d)] = stride;
    stride *= p.dims[u(d)];
  }
  for_each_index(rows, rows * out_width >= kParallelElements, [&](std::int64_t r) {
    std::int64_t rest = r;
    std::int64_t src = 0;
    for (int d = last - 1; d >= 0; --d) {
      const std::int64_t n = p.dims[u(d)] * p.multiples[u(d)];
      src += (rest % n) % p.dims[u(d)] * xs[u(d)];
      rest /= n;
    }
    T* dst = out + r * out_width;
    for (std::int64_t m = 0; m < p.multiples[u(last)]; ++m)
      std::copy(x + src, x + src + width, dst + m * width);
  });
}

void tile_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const auto& multiples = ctx.attrs<TileAttrs>().multiples;
  Shape shape = x.shape();
  for (int d = 0; d < x.rank(); ++d) shape[d] *= multiples[u(d)];
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  const TilePlan plan = tile_plan(x.shape(), multiples);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    tile_into(x.data<T>().data(), plan, out.mutable_data<T>().data());
  });
}

// Tile's gradient: out[j] = sum over tiles t of dy[t * dims + j]. Threads split the output rows
// and each row adds its tiles in a fixed order (in double), so results do not depend on the
// thread count.
template <class T>
void tile_sum(const T* dy, const TilePlan& p, T* out) {
  const int last = p.rank - 1;
  const std::int64_t width = p.dims[u(last)];
  const std::int64_t dy_width = width * p.multiples[u(last)];
  std::int64_t rows = 1;
  std::int64_t tiles = 1;
  for (int d = 0; d < last; ++d) {
    rows *= p.dims[u(d)];
    tiles *= p.multiples[u(d)];
  }
  Dims dy_rows{};  // dy row stride of each outer dim, in rows
  std::int64_t stride = 1;
  for (int d = last - 1; d >= 0; --d) {
    dy_rows[u(d)] = stride;
    stride *= p.dims[u(d)] * p.multiples[u(d)];
  }
  for_each_index(rows, rows * tiles * dy_width >= kParallelElements, [&](std::int64_t r) {
    double* a = zeroed_scratch(width);
    for (std::int64_t t = 0; t < tiles; ++t) {
      std::int64_t row_rest = r;
      std::int64_t tile_rest = t;
      std::int64_t dy_row = 0;
      for (int d = last - 1; d >= 0; --d) {
        const std::int64_t j = row_rest % p.dims[u(d)];
        const std::int64_t k = tile_rest % p.multiples[u(d)];
        row_rest /= p.dims[u(d)];
        tile_rest /= p.multiples[u(d)];
        dy_row += (k * p.dims[u(d)] + j) * dy_rows[u(d)];
      }
      const T* src = dy + dy_row * dy_width;
      for (std::int64_t m = 0; m < p.multiples[u(last)]; ++m) {
        const T* seg = src + m * width;
#pragma omp simd
        for (std::int64_t c = 0; c < width; ++c) a[c] += static_cast<double>(seg[c]);
      }
    }
    T* dst = out + r * width;
    for (std::int64_t c = 0; c < width; ++c) dst[c] = static_cast<T>(a[c]);
  });
}

// Inputs: dy and shape(x).
void tile_grad_kernel(KernelContext& ctx) {
  const Array& dy = ctx.input(0);
  const auto& multiples = ctx.attrs<TileAttrs>().multiples;
  const Shape shape = shape_from_input(ctx, 1);
  for (int d = 0; d < shape.rank(); ++d) {
    if (shape[d] * multiples[u(d)] != dy.shape()[d])
      ctx.fail(
          str("gradient ", dy.shape(), " is not ", shape, " tiled by ", vector_string(multiples)));
  }
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  if (dy.size() == 0) {
    zero_fill(out);
    return;
  }
  const TilePlan plan = tile_plan(shape, multiples);
  dispatch_floating(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    tile_sum(dy.data<T>().data(), plan, out.mutable_data<T>().data());
  });
}

Tensor tile_grad(const Tensor& dy, const Tensor& x, const TileAttrs& attrs);

void tile_gradient(GradContext& g) {
  g.set(0, tile_grad(g.grad_output(0), g.input(0), g.attrs<TileAttrs>()));
}
void tile_grad_gradient(GradContext& g) {
  g.set(0, tile(g.grad_output(0), g.attrs<TileAttrs>().multiples));
}

const OpDef kTileOp{.name = "Tile", .kernel = tile_kernel, .gradient = tile_gradient};
const OpDef kTileGradOp{
    .name = "TileGrad", .kernel = tile_grad_kernel, .gradient = tile_grad_gradient};

Tensor tile_grad(const Tensor& dy, const Tensor& x, const TileAttrs& attrs) {
  const Tensor inputs[] = {dy, shape(x)};
  return dy.graph().record1(kTileGradOp, inputs, {x.dtype(), x.shape()}, attrs, "TileGrad");
}

// ---- builder helpers ----------------------------------------------------------------------------

Tensor record_unary(const OpDef& op, const Tensor& x, Shape shape, std::any attrs,
                    std::string_view name = {}) {
  const Tensor inputs[] = {x};
  return x.graph().record1(op, inputs, {x.dtype(), std::move(shape)}, std::move(attrs), name);
}

}  // namespace

namespace detail {

Shape static_dims_value(const Tensor& dims, std::string_view op, bool allow_inferred) {
  require_tensor(dims, op);
  if (dims.dtype() != DType::Int64 || dims.shape().rank() != 1 || dims.shape()[0] < 0) {
    throw ValueError(str(op, ": the shape tensor '", dims.name(), "' is ", dims.dtype(),
                         dims.shape(), "; expected a 1-D int64 tensor of known length"));
  }
  if (dims.shape()[0] > Shape::kMaxRank) {
    throw ValueError(str(op, ": the shape tensor '", dims.name(), "' has ", dims.shape()[0],
                         " entries; the maximum rank is ", Shape::kMaxRank));
  }
  if (const auto value = constant_value(dims)) {
    const auto v = value->data<std::int64_t>();
    const auto inferred = std::count(v.begin(), v.end(), std::int64_t{-1});
    const bool negative = std::any_of(v.begin(), v.end(), [](auto d) { return d < -1; });
    if (negative || inferred > (allow_inferred ? 1 : 0)) {
      throw ValueError(
          str(op, ": the shape ", vector_string(v), " from '", dims.name(), "' has negative dims"));
    }
    return Shape(v);
  }
  if (!dims.is_op() && dims.op().op == &kShapeOp) {
    const auto& in = dims.op().inputs[0];
    return Tensor(&dims.graph(), in.node, in.index).shape();
  }
  Shape unknown;
  for (std::int64_t d = 0; d < dims.shape()[0]; ++d) unknown.push_back(-1);
  return unknown;
}

}  // namespace detail

Tensor reshape(const Tensor& x, const Shape& shape) {
  require_tensor(x, "reshape");
  const std::string who = label(x.graph(), "reshape", "Reshape");
  const std::string requested = vector_string(shape.dims());
  std::int64_t known = 1;
  int inferred = -1;
  for (int d = 0; d < shape.rank(); ++d) {
    if (shape[d] >= 0) {
      known *= shape[d];
    } else if (inferred >= 0) {
      throw ValueError(str(who, ": the requested shape ", requested,
                           " has more than one -1 (only one dim can be inferred)"));
    } else {
      inferred = d;
    }
  }
  Shape out = shape;
  const std::int64_t count = x.shape().num_elements();
  if (inferred >= 0 && count >= 0) {
    if (known == 0 || count % known != 0) {
      throw ValueError(str(who, ": cannot reshape '", x.name(), "' ", x.shape(), " (", count,
                           " elements) to ", requested, ": ", count, " is not a multiple of ",
                           known));
    }
    out[inferred] = count / known;
  } else if (inferred < 0 && count >= 0 && count != known) {
    throw ValueError(str(who, ": cannot reshape '", x.name(), "' ", x.shape(), " (", count,
                         " elements) to ", requested, " (", known, " elements)"));
  } else if (inferred < 0 && count < 0) {
    std::int64_t x_known = 1;  // the product of x's known dims must divide the target's count
    for (auto d : x.shape().dims()) x_known *= d >= 0 ? d : 1;
    if (x_known > 0 && known % x_known != 0) {
      throw ValueError(str(who, ": cannot reshape '", x.name(), "' ", x.shape(), " to ", requested,
                           " (", known, " elements) for any value of its unknown dims"));
    }
  }
  return record_unary(kReshapeOp, x, out, ReshapeAttrs{shape}, "Reshape");
}

Tensor reshape(const Tensor& x, const Tensor& shape) {
  require_tensor(x, "reshape");
  const std::string who = label(x.graph(), "reshape", "Reshape");
  const Shape target = detail::static_dims_value(shape, who, true);
  if (constant_value(shape)) return reshape(x, target);
  const std::int64_t count = x.shape().num_elements();
  const std::int64_t target_count = target.num_elements();
  if (count >= 0 && target_count >= 0 && count != target_count) {
    throw ValueError(str(who, ": cannot reshape '", x.name(), "' ", x.shape(), " to ", target,
                         " from '", shape.name(), "'"));
  }
  const Tensor inputs[] = {x, shape};
  return x.graph().record1(kReshapeByTensorOp, inputs, {x.dtype(), target}, ReshapeAttrs{},
                           "Reshape");
}

Tensor transpose(const Tensor& x, const std::vector<int>& perm) {
  require_tensor(x, "transpose");
  const int rank = x.shape().rank();
  std::vector<int> p = perm;
  if (p.empty()) {
    for (int d = rank - 1; d >= 0; --d) p.push_back(d);
  }
  std::vector<int> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> expected(u(rank));
  std::iota(expected.begin(), expected.end(), 0);
  if (sorted != expected) {
    std::string list;
    for (int v : p) list += (list.empty() ? "" : ", ") + std::to_string(v);
    throw ValueError(str(label(x.graph(), "transpose", "Transpose"), ": perm [", list,
                         "] is not a permutation of 0..", rank - 1, " for '", x.name(), "' ",
                         x.shape()));
  }
  Shape shape;
  for (int d : p) shape.push_back(x.shape()[d]);
  return record_unary(kTransposeOp, x, shape, TransposeAttrs{p}, "Transpose");
}

Tensor expand_dims(const Tensor& x, int axis) {
  require_tensor(x, "expand_dims");
  const int rank = x.shape().rank();
  if (axis < -rank - 1 || axis > rank) {
    throw ValueError(str(label(x.graph(), "expand_dims", "ExpandDims"), ": axis ", axis,
                         " is out of range for '", x.name(), "' ", x.shape(),
                         " (valid: ", -rank - 1, " to ", rank, ")"));
  }
  const int a = axis < 0 ? axis + rank + 1 : axis;
  Shape shape = x.shape();
  shape.insert(a, 1);
  return record_unary(kExpandDimsOp, x, shape, AxisAttrs{a}, "ExpandDims");
}

Tensor squeeze(const Tensor& x, const std::vector<int>& axes) {
  require_tensor(x, "squeeze");
  const std::string who = label(x.graph(), "squeeze", "Squeeze");
  std::vector<int> resolved;
  if (axes.empty()) {
    // Only dims known to be 1 go: the rank is fixed while building, unlike TF's unknown rank.
    for (int d = 0; d < x.shape().rank(); ++d) {
      if (x.shape()[d] == 1) resolved.push_back(d);
    }
  } else {
    resolved = detail::resolve_axes("squeeze", x.graph().unique_name("Squeeze", false), x, axes);
    for (int a : resolved) {
      if (x.shape()[a] > 1) {
        throw ValueError(str(who, ": cannot squeeze axis ", a, " of '", x.name(), "' ", x.shape(),
                             ": its size is ", x.shape()[a], ", not 1"));
      }
    }
  }
  Shape shape = x.shape();
  for (auto it = resolved.rbegin(); it != resolved.rend(); ++it) shape.erase(*it);
  return record_unary(kSqueezeOp, x, shape, SqueezeAttrs{resolved}, "Squeeze");
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  require_tensor(x, "broadcast_to");
  const std::string who = label(x.graph(), "broadcast_to", "BroadcastTo");
  if (!shape.is_fully_defined())
    throw ValueError(str(who, ": the target shape ", shape, " must be fully defined"));
  const Shape& s = x.shape();
  bool ok = s.rank() <= shape.rank();
  for (int d = 0; ok && d < s.rank(); ++d) {
    const std::int64_t t = shape[shape.rank() - s.rank() + d];
    ok = s[d] == 1 || s[d] == t || s[d] < 0;
  }
  if (!ok) throw ValueError(str(who, ": cannot broadcast '", x.name(), "' ", s, " to ", shape));
  return record_unary(kBroadcastToOp, x, shape, {}, "BroadcastTo");
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("concat: needs at least one tensor");
  for (const auto& x : xs) require_tensor(x, "concat");
  Graph& graph = xs.front().graph();
  const std::string who = label(graph, "concat", "concat");
  const Tensor& first = xs.front();
  const int rank = first.shape().rank();
  if (rank == 0) throw ValueError(str(who, ": cannot concatenate scalars (use stack)"));
  const int a = normalize_axis(axis, rank, who.c_str());
  Shape shape = first.shape();
  shape[a] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    if (&xs[i].graph() != &graph)
      throw ValueError(str(who, ": '", xs[i].name(), "' belongs to another graph"));
    if (xs[i].dtype() != first.dtype()) {
      throw ValueError(str(who, ": input ", i, " '", xs[i].name(), "' is ", xs[i].dtype(), s,
                           " but input 0 '", first.name(), "' is ", first.dtype(), first.shape()));
    }
    if (s.rank() != rank) {
      throw ValueError(str(who, ": input ", i, " '", xs[i].name(), "' ", s, " has rank ", s.rank(),
                           " but input 0 '", first.name(), "' ", first.shape(), " has rank ",
                           rank));
    }
    for (int d = 0; d < rank; ++d) {
      if (d == a) continue;
      if (s[d] >= 0 && shape[d] >= 0 && s[d] != shape[d]) {
        throw ValueError(str(who, ": input ", i, " '", xs[i].name(), "' ", s, " and input 0 '",
                             first.name(), "' ", first.shape(), " differ in dim ", d,
                             " (only axis ", a, " may differ)"));
      }
      if (shape[d] < 0) shape[d] = s[d];
    }
    shape[a] = (shape[a] < 0 || s[a] < 0) ? -1 : shape[a] + s[a];
  }
  return graph.record1(kConcatOp, xs, {first.dtype(), shape}, ConcatAttrs{a}, "concat");
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("stack: needs at least one tensor");
  for (const auto& x : xs) require_tensor(x, "stack");
  const Tensor& first = xs.front();
  const int rank = first.shape().rank();
  if (axis < -rank - 1 || axis > rank) {
    throw ValueError(str(label(first.graph(), "stack", "stack"), ": axis ", axis,
                         " is out of range for stacking rank-", rank,
                         " tensors (valid: ", -rank - 1, " to ", rank, ")"));
  }
  for (std::size_t i = 1; i < xs.size(); ++i) {
    if (!xs[i].shape().is_compatible_with(first.shape())) {
      throw ValueError(str(label(first.graph(), "stack", "stack"), ": input ", i, " '",
                           xs[i].name(), "' ", xs[i].shape(), " differs from input 0 '",
                           first.name(), "' ", first.shape()));
    }
  }
  const int a = axis < 0 ? axis + rank + 1 : axis;
  const NameScope scope(first.graph(), "stack");
  std::vector<Tensor> expanded;
  for (const auto& x : xs) expanded.push_back(expand_dims(x, a));
  return concat(expanded, a);
}

Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin,
             const std::vector<std::int64_t>& size) {
  require_tensor(x, "slice");
  const std::string who = label(x.graph(), "slice", "Slice");
  const Shape& s = x.shape();
  if (begin.size() != u(s.rank()) || size.size() != u(s.rank())) {
    throw ValueError(str(who, ": begin ", vector_string(begin), " and size ", vector_string(size),
                         " must have one entry per dim of '", x.name(), "' ", s));
  }
  Shape shape;
  for (int d = 0; d < s.rank(); ++d) {
    const std::int64_t b = begin[u(d)];
    const std::int64_t n = size[u(d)];
    const bool bad = b < 0 || n < -1 || (s[d] >= 0 && (b > s[d] || (n >= 0 && b + n > s[d])));
    if (bad) {
      throw ValueError(str(who, ": begin ", vector_string(begin), " and size ", vector_string(size),
                           " do not fit in '", x.name(), "' ", s, " (dim ", d, ")"));
    }
    shape.push_back(n >= 0 ? n : (s[d] >= 0 ? s[d] - b : -1));
  }
  return record_unary(kSliceOp, x, shape, SliceAttrs{begin, size}, "Slice");
}

Tensor gather(const Tensor& params, const Tensor& indices, int axis) {
  require_tensor(params, "gather");
  require_tensor(indices, "gather");
  const std::string who = label(params.graph(), "gather", "GatherV2");
  const int rank = params.shape().rank();
  if (rank == 0) throw ValueError(str(who, ": params '", params.name(), "' is a scalar"));
  if (indices.dtype() != DType::Int64) {
    throw ValueError(str(who, ": indices '", indices.name(), "' are ", indices.dtype(),
                         "; expected int64 (use ad::cast)"));
  }
  if (axis < -rank || axis >= rank) {
    throw ValueError(str(who, ": axis ", axis, " is out of range for params '", params.name(), "' ",
                         params.shape(), " (valid: ", -rank, " to ", rank - 1, ")"));
  }
  const int a = axis < 0 ? axis + rank : axis;
  const Tensor inputs[] = {params, indices};
  return params.graph().record1(
      kGatherOp, inputs, {params.dtype(), gathered_shape(params.shape(), indices.shape(), a)},
      AxisAttrs{a}, "GatherV2");
}

Tensor one_hot(const Tensor& indices, std::int64_t depth, double on_value, double off_value,
               DType dtype) {
  require_tensor(indices, "one_hot");
  const std::string who = label(indices.graph(), "one_hot", "OneHot");
  if (indices.dtype() != DType::Int64) {
    throw ValueError(str(who, ": indices '", indices.name(), "' are ", indices.dtype(),
                         "; expected int64 (use ad::cast)"));
  }
  if (depth < 0) throw ValueError(str(who, ": depth ", depth, " is negative"));
  Shape shape = indices.shape();
  shape.push_back(depth);
  const Tensor inputs[] = {indices};
  return indices.graph().record1(kOneHotOp, inputs, {dtype, shape},
                                 OneHotAttrs{depth, on_value, off_value}, "OneHot");
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  require_tensor(condition, "where");
  require_tensor(a, "where");
  require_tensor(b, "where");
  const std::string who = label(condition.graph(), "where", "SelectV2");
  if (condition.dtype() != DType::Bool) {
    throw ValueError(
        str(who, ": condition '", condition.name(), "' is ", condition.dtype(), "; expected bool"));
  }
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(who, ": '", a.name(), "' is ", a.dtype(), a.shape(), " but '", b.name(),
                         "' is ", b.dtype(), b.shape(), " (use ad::cast)"));
  }
  const Shape ab = broadcast_static_shape(who.c_str(), a.shape(), b.shape());
  const Shape shape = broadcast_static_shape(who.c_str(), condition.shape(), ab);
  const Tensor inputs[] = {condition, a, b};
  return a.graph().record1(kWhereOp, inputs, {a.dtype(), shape}, {}, "SelectV2");
}

Tensor fill(Graph& graph, const Shape& shape, double value, DType dtype) {
  if (!shape.is_fully_defined()) {
    throw ValueError(str(label(graph, "fill", "Fill"), ": shape ", shape,
                         " must be fully defined (use the overload taking a dims tensor)"));
  }
  return graph.record1(kFillOp, {}, {dtype, shape}, FillAttrs{value}, "Fill");
}

Tensor fill(const Tensor& dims, double value, DType dtype) {
  require_tensor(dims, "fill");
  const Shape shape = detail::static_dims_value(dims, label(dims.graph(), "fill", "Fill"), false);
  const Tensor inputs[] = {dims};
  return dims.graph().record1(kFillByTensorOp, inputs, {dtype, shape}, FillAttrs{value}, "Fill");
}

Tensor zeros(Graph& graph, const Shape& shape, DType dtype) {
  return fill(graph, shape, 0.0, dtype);
}
Tensor ones(Graph& graph, const Shape& shape, DType dtype) {
  return fill(graph, shape, 1.0, dtype);
}

Tensor shape(const Tensor& x) {
  require_tensor(x, "shape");
  const Tensor inputs[] = {x};
  return x.graph().record1(kShapeOp, inputs, {DType::Int64, Shape{x.shape().rank()}}, {}, "Shape");
}

Tensor size(const Tensor& x) {
  require_tensor(x, "size");
  const Tensor inputs[] = {x};
  return x.graph().record1(kSizeOp, inputs, {DType::Int64, Shape{}}, {}, "Size");
}

Tensor tile(const Tensor& x, const std::vector<std::int64_t>& multiples) {
  require_tensor(x, "tile");
  const std::string who = label(x.graph(), "tile", "Tile");
  const Shape& s = x.shape();
  if (multiples.size() != u(s.rank())) {
    throw ValueError(str(who, ": multiples ", vector_string(multiples),
                         " must have one entry per dim of '", x.name(), "' ", s));
  }
  Shape shape;
  for (int d = 0; d < s.rank(); ++d) {
    if (multiples[u(d)] < 0)
      throw ValueError(str(who, ": multiples ", vector_string(multiples), " has a negative entry"));
    shape.push_back(s[d] < 0 ? -1 : s[d] * multiples[u(d)]);
  }
  return record_unary(kTileOp, x, shape, TileAttrs{multiples}, "Tile");
}

Tensor pad(const Tensor& x, const Paddings& paddings) {
  require_tensor(x, "pad");
  const std::string who = label(x.graph(), "pad", "Pad");
  const Shape& s = x.shape();
  if (paddings.size() != u(s.rank())) {
    throw ValueError(str(who, ": ", paddings.size(), " paddings for '", x.name(), "' ", s,
                         "; expected one {before, after} pair per dim"));
  }
  Shape shape;
  for (int d = 0; d < s.rank(); ++d) {
    const auto [before, after] = paddings[u(d)];
    if (before < 0 || after < 0) {
      throw ValueError(
          str(who, ": padding {", before, ", ", after, "} of dim ", d, " is negative"));
    }
    shape.push_back(s[d] < 0 ? -1 : s[d] + before + after);
  }
  return record_unary(kPadOp, x, shape, PadAttrs{paddings}, "Pad");
}

}  // namespace ad
