// Indexing ops (array.h): gather (and its gradient, a deterministic scatter-add), one_hot and
// where, each one block of kernel, gradient, OpDef and builder.
#include <algorithm>
#include <array>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/internal/convert_element.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/array_loops.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/index_values.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {
using detail::Dims;
using detail::for_each_index;
using detail::for_each_row;
using detail::kParallelElements;
using detail::Nest;
using detail::op_label;
using detail::require_tensor;
using detail::shape_from_input;
using detail::simplify;
using detail::strides_of;
using detail::u;
using detail::vector_string;
using detail::zeroed_scratch;
}  // namespace

// ---- gather -------------------------------------------------------------------------------------

namespace {

struct AxisAttrs {
  int axis = 0;
};

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

void check_indices(const KernelContext& ctx, std::span<const std::int64_t> idx,
                   const Array& indices, const Shape& params, int axis) {
  const std::int64_t n = params[axis];
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
  std::vector<std::int64_t> widened;
  const std::int64_t* idx = detail::index_values(indices, widened).data();
  check_indices(ctx, {idx, static_cast<std::size_t>(indices.size())}, indices, params.shape(),
                axis);
  Array& out = ctx.allocate_output(0, gathered_shape(params.shape(), indices.shape(), axis));
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
// `buckets` holds scatter_add_buckets(g, idx.size()) elements.
std::int64_t scatter_add_buckets(const GatherDims& g, std::size_t indices) {
  return 2 * (g.n + 1) + static_cast<std::int64_t>(indices);
}

template <class T>
void scatter_add(const T* dy, std::span<const std::int64_t> idx, const GatherDims& g, T* out,
                 std::int64_t* buckets) {
  // start[r]: the first of row r's indices in `order`; cursor: where the next one goes.
  std::int64_t* start = buckets;
  std::int64_t* cursor = buckets + g.n + 1;
  std::int64_t* order = buckets + 2 * (g.n + 1);
  std::fill_n(start, g.n + 1, 0);
  for (auto i : idx) ++start[i + 1];
  std::partial_sum(start, start + g.n + 1, start);
  std::copy_n(start, g.n, cursor);
  for (std::size_t j = 0; j < idx.size(); ++j)
    order[cursor[idx[j]]++] = static_cast<std::int64_t>(j);
  const std::int64_t rows = g.outer * g.n;
  for_each_index(rows, g.outer * g.m * g.inner >= kParallelElements, [&](std::int64_t t) {
    const std::int64_t o = t / g.n;
    const auto r = static_cast<std::size_t>(t % g.n);
    double* a = zeroed_scratch(g.inner);
    for (std::int64_t k = start[r]; k < start[r + 1]; ++k) {
      const T* row = dy + (o * g.m + order[k]) * g.inner;
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
  std::vector<std::int64_t> widened;
  const auto idx = detail::index_values(indices, widened);
  check_indices(ctx, idx, indices, shape, axis);
  if (dy.size() != g.outer * g.m * g.inner)
    ctx.fail(str("gradient ", dy.shape(), " does not match params ", shape, " and indices ",
                 indices.shape()));
  Array& out = ctx.allocate_output(0, shape);
  if (out.size() == 0) return;
  const Scratch buckets =
      ctx.scratch<std::int64_t>(scatter_add_buckets(g, idx.size()), "the index buckets");
  dispatch_floating(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    scatter_add(dy.data<T>().data(), idx, g, out.mutable_data<T>().data(),
                buckets.data<std::int64_t>());
  });
}

Tensor gather_grad(const Tensor& dy, const Tensor& indices, const Tensor& params, int axis);

void gather_gradient(GradContext& g) {
  g.set(0, gather_grad(g.grad_output(0), g.input(1), g.input(0), g.attrs<AxisAttrs>().axis));
}

void gather_grad_gradient(GradContext& g) {
  g.set(0, gather(g.grad_output(0), g.input(1), g.attrs<AxisAttrs>().axis));
}

// Indices may be Int64, Int32 or UInt8 (the builder keeps narrow integers out of params).
const OpDef kGatherOp{.name = "GatherV2",
                      .kernel = gather_kernel,
                      .gradient = gather_gradient,
                      .narrow_integers = true};
const OpDef kGatherGradOp{.name = "GatherGrad",
                          .kernel = gather_grad_kernel,
                          .gradient = gather_grad_gradient,
                          .narrow_integers = true};

Tensor gather_grad(const Tensor& dy, const Tensor& indices, const Tensor& params, int axis) {
  const Tensor inputs[] = {dy, indices, shape(params)};
  return dy.graph().record1(kGatherGradOp, inputs, {params.dtype(), params.shape()},
                            AxisAttrs{axis}, "GatherGrad");
}

}  // namespace

Tensor gather(const Tensor& params, const Tensor& indices, int axis) {
  require_tensor(params, "gather");
  require_tensor(indices, "gather");
  const std::string who = op_label(params.graph(), "gather", "GatherV2");
  const int rank = params.shape().rank();
  if (rank == 0) throw ValueError(str(who, ": params '", params.name(), "' is a scalar"));
  if (!is_integer(indices.dtype())) {
    throw ValueError(str(who, ": indices '", indices.name(), "' are ", indices.dtype(),
                         "; expected int64, int32 or uint8 (use ad::cast)"));
  }
  if (is_narrow_integer(params.dtype())) {
    throw ValueError(
        str(who, ": params '", params.name(), "' are ", params.dtype(),
            ", which GatherV2 does not support (cast them to int64 or a floating dtype "
            "first)"));
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

// ---- one_hot, where -----------------------------------------------------------------------------

namespace {

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
  detail::require_countable(ctx, shape);
  Array& out = ctx.allocate_output(0, shape);
  std::vector<std::int64_t> widened;
  const auto idx = detail::index_values(indices, widened);
  dispatch_any(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto y = out.mutable_data<T>();
    std::fill(y.begin(), y.end(), detail::convert_element<T>(attrs.off));
    for (std::size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] >= 0 && idx[i] < attrs.depth)
        y[i * static_cast<std::size_t>(attrs.depth) + static_cast<std::size_t>(idx[i])] =
            detail::convert_element<T>(attrs.on);
    }
  });
}

const OpDef kOneHotOp{.name = "OneHot", .kernel = one_hot_kernel, .narrow_integers = true};

}  // namespace

Tensor one_hot(const Tensor& indices, std::int64_t depth, double on_value, double off_value,
               DType dtype) {
  require_tensor(indices, "one_hot");
  const std::string who = op_label(indices.graph(), "one_hot", "OneHot");
  if (!is_integer(indices.dtype())) {
    throw ValueError(str(who, ": indices '", indices.name(), "' are ", indices.dtype(),
                         "; expected int64, int32 or uint8 (use ad::cast)"));
  }
  if (depth < 0) throw ValueError(str(who, ": depth ", depth, " is negative"));
  Shape shape = indices.shape();
  shape.push_back(depth);
  detail::require_countable(who, shape);
  const Tensor inputs[] = {indices};
  return indices.graph().record1(kOneHotOp, inputs, {dtype, shape},
                                 OneHotAttrs{depth, on_value, off_value}, "OneHot");
}

// ---- where ------------------------------------------------------------------------------------

namespace {

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

}  // namespace

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  require_tensor(condition, "where");
  require_tensor(a, "where");
  require_tensor(b, "where");
  const std::string who = op_label(condition.graph(), "where", "SelectV2");
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

}  // namespace ad
