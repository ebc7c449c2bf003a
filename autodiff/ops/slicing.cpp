// Ops that cut and join boxes (array.h): concat, stack, slice, pad, tile, each one block of kernel,
// gradient, OpDef and builder. They copy through copy_box's strided nests; tile's gradient sums
// its tiles in a fixed order, so it does not depend on the thread count.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/array_loops.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {
using detail::copy_box;
using detail::Dims;
using detail::for_each_index;
using detail::kParallelElements;
using detail::op_label;
using detail::Paddings;
using detail::record_one_input;
using detail::require_tensor;
using detail::shape_from_input;
using detail::u;
using detail::vector_string;
using detail::zero_fill;
using detail::zeroed_scratch;
}  // namespace

// ---- concat -------------------------------------------------------------------------------------

namespace {

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

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("concat: needs at least one tensor");
  for (const auto& x : xs) require_tensor(x, "concat");
  Graph& graph = xs.front().graph();
  const std::string who = op_label(graph, "concat", "concat");
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
    const auto joined = detail::checked_add(shape[a], s[a]);
    if (shape[a] >= 0 && s[a] >= 0 && !joined) {
      throw ValueError(str(who, ": the joined size of axis ", a, " overflows int64 at input ", i,
                           " '", xs[i].name(), "' ", s));
    }
    shape[a] = (shape[a] < 0 || s[a] < 0) ? -1 : *joined;
  }
  return graph.record1(kConcatOp, xs, {first.dtype(), shape}, ConcatAttrs{a}, "concat");
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("stack: needs at least one tensor");
  for (const auto& x : xs) require_tensor(x, "stack");
  const Tensor& first = xs.front();
  const int rank = first.shape().rank();
  if (axis < -rank - 1 || axis > rank) {
    throw ValueError(str(op_label(first.graph(), "stack", "stack"), ": axis ", axis,
                         " is out of range for stacking rank-", rank,
                         " tensors (valid: ", -rank - 1, " to ", rank, ")"));
  }
  for (std::size_t i = 1; i < xs.size(); ++i) {
    if (!xs[i].shape().is_compatible_with(first.shape())) {
      throw ValueError(str(op_label(first.graph(), "stack", "stack"), ": input ", i, " '",
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

// ---- slice, pad and their gradients -------------------------------------------------------------

namespace {

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
    const auto padded = detail::checked_add(shape[d], paddings[u(d)].first);
    const auto total = padded ? detail::checked_add(*padded, paddings[u(d)].second) : padded;
    if (!total) ctx.fail(str("padding dim ", d, " of ", x.shape(), " overflows int64"));
    shape[d] = *total;
    before[u(d)] = paddings[u(d)].first;
  }
  detail::require_countable(ctx, shape);
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

}  // namespace

Tensor slice(const Tensor& x, const std::vector<std::int64_t>& begin,
             const std::vector<std::int64_t>& size) {
  require_tensor(x, "slice");
  const std::string who = op_label(x.graph(), "slice", "Slice");
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
  return record_one_input(kSliceOp, x, shape, SliceAttrs{begin, size}, "Slice");
}

Tensor pad(const Tensor& x, const Paddings& paddings) {
  require_tensor(x, "pad");
  const std::string who = op_label(x.graph(), "pad", "Pad");
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
    const auto padded = detail::checked_add(s[d], before);
    const auto total = padded ? detail::checked_add(*padded, after) : padded;
    if (!total) {
      throw ValueError(str(who, ": padding {", before, ", ", after, "} of dim ", d, " of '",
                           x.name(), "' ", s, " overflows int64"));
    }
    shape.push_back(s[d] < 0 ? -1 : *total);
  }
  detail::require_countable(who, shape);
  return record_one_input(kPadOp, x, shape, PadAttrs{paddings}, "Pad");
}

// ---- tile ---------------------------------------------------------------------------------------

namespace {

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
  for (int d = 0; d < x.rank(); ++d) {
    const auto tiled = detail::checked_mul(shape[d], multiples[u(d)]);
    if (!tiled) {
      ctx.fail(str("tiling ", x.shape(), " by ", vector_string(multiples),
                   " overflows int64 in dim ", d));
    }
    shape[d] = *tiled;
  }
  detail::require_countable(ctx, shape);
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

}  // namespace

Tensor tile(const Tensor& x, const std::vector<std::int64_t>& multiples) {
  require_tensor(x, "tile");
  const std::string who = op_label(x.graph(), "tile", "Tile");
  const Shape& s = x.shape();
  if (multiples.size() != u(s.rank())) {
    throw ValueError(str(who, ": multiples ", vector_string(multiples),
                         " must have one entry per dim of '", x.name(), "' ", s));
  }
  Shape shape;
  for (int d = 0; d < s.rank(); ++d) {
    if (multiples[u(d)] < 0)
      throw ValueError(str(who, ": multiples ", vector_string(multiples), " has a negative entry"));
    const auto tiled = detail::checked_mul(s[d], multiples[u(d)]);
    if (s[d] >= 0 && !tiled) {
      throw ValueError(str(who, ": tiling '", x.name(), "' ", s, " by ", vector_string(multiples),
                           " overflows int64 in dim ", d));
    }
    shape.push_back(s[d] < 0 ? -1 : *tiled);
  }
  detail::require_countable(who, shape);
  return record_one_input(kTileOp, x, shape, TileAttrs{multiples}, "Tile");
}

}  // namespace ad
