// Shape ops (array.h): reshape, expand_dims, squeeze, transpose, broadcast_to, each one block of
// kernel, gradient, OpDef and builder. reshape, expand_dims and squeeze alias their input; the
// gradients take shape(x) rather than x when x's shape is not known, so x can be released early.
#include <algorithm>
#include <array>
#include <numeric>
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
using detail::Dims;
using detail::for_each_index;
using detail::for_each_row;
using detail::kParallelElements;
using detail::Nest;
using detail::op_label;
using detail::record_one_input;
using detail::require_tensor;
using detail::simplify;
using detail::strides_of;
using detail::u;
using detail::vector_string;
}  // namespace

// ---- reshape ------------------------------------------------------------------------------------

namespace {

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
      const auto product = detail::checked_mul(known, requested[d]);
      if (!product) {
        ctx.fail(str("the requested shape ", vector_string(requested),
                     " has more elements than fit in int64"));
      }
      known = *product;
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

// Reshapes only relabel the storage, so they take every dtype (uint8 images, int32 labels).
const OpDef kReshapeOp{.name = "Reshape",
                       .kernel = reshape_kernel,
                       .gradient = reshape_gradient,
                       .narrow_integers = true};
const OpDef kReshapeByTensorOp{.name = "Reshape",
                               .kernel = reshape_by_tensor_kernel,
                               .gradient = reshape_gradient,
                               .narrow_integers = true};

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  require_tensor(x, "reshape");
  const std::string who = op_label(x.graph(), "reshape", "Reshape");
  const std::string requested = vector_string(shape.dims());
  std::int64_t known = 1;
  int inferred = -1;
  for (int d = 0; d < shape.rank(); ++d) {
    if (shape[d] >= 0) {
      const auto product = detail::checked_mul(known, shape[d]);
      if (!product) {
        throw ValueError(
            str(who, ": the requested shape ", requested, " has more elements than fit in int64"));
      }
      known = *product;
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
  return record_one_input(kReshapeOp, x, out, ReshapeAttrs{shape}, "Reshape");
}

Tensor reshape(const Tensor& x, const Tensor& shape) {
  require_tensor(x, "reshape");
  const std::string who = op_label(x.graph(), "reshape", "Reshape");
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

// ---- expand_dims, squeeze -----------------------------------------------------------------------

namespace {

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

const OpDef kExpandDimsOp{.name = "ExpandDims",
                          .kernel = expand_dims_kernel,
                          .gradient = reshape_gradient,
                          .narrow_integers = true};
const OpDef kSqueezeOp{.name = "Squeeze",
                       .kernel = squeeze_kernel,
                       .gradient = reshape_gradient,
                       .narrow_integers = true};

}  // namespace

Tensor expand_dims(const Tensor& x, int axis) {
  require_tensor(x, "expand_dims");
  const int rank = x.shape().rank();
  if (axis < -rank - 1 || axis > rank) {
    throw ValueError(str(op_label(x.graph(), "expand_dims", "ExpandDims"), ": axis ", axis,
                         " is out of range for '", x.name(), "' ", x.shape(),
                         " (valid: ", -rank - 1, " to ", rank, ")"));
  }
  const int a = axis < 0 ? axis + rank + 1 : axis;
  Shape shape = x.shape();
  shape.insert(a, 1);
  return record_one_input(kExpandDimsOp, x, shape, AxisAttrs{a}, "ExpandDims");
}

Tensor squeeze(const Tensor& x, const std::vector<int>& axes) {
  require_tensor(x, "squeeze");
  const std::string who = op_label(x.graph(), "squeeze", "Squeeze");
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
  return record_one_input(kSqueezeOp, x, shape, SqueezeAttrs{resolved}, "Squeeze");
}

// ---- transpose ----------------------------------------------------------------------------------

namespace {

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

}  // namespace

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
    throw ValueError(str(op_label(x.graph(), "transpose", "Transpose"), ": perm [", list,
                         "] is not a permutation of 0..", rank - 1, " for '", x.name(), "' ",
                         x.shape()));
  }
  Shape shape;
  for (int d : p) shape.push_back(x.shape()[d]);
  return record_one_input(kTransposeOp, x, shape, TransposeAttrs{p}, "Transpose");
}

// ---- broadcast_to -------------------------------------------------------------------------------

namespace {

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

}  // namespace

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  require_tensor(x, "broadcast_to");
  const std::string who = op_label(x.graph(), "broadcast_to", "BroadcastTo");
  if (!shape.is_fully_defined())
    throw ValueError(str(who, ": the target shape ", shape, " must be fully defined"));
  detail::require_countable(who, shape);
  const Shape& s = x.shape();
  bool ok = s.rank() <= shape.rank();
  for (int d = 0; ok && d < s.rank(); ++d) {
    const std::int64_t t = shape[shape.rank() - s.rank() + d];
    ok = s[d] == 1 || s[d] == t || s[d] < 0;
  }
  if (!ok) throw ValueError(str(who, ": cannot broadcast '", x.name(), "' ", s, " to ", shape));
  return record_one_input(kBroadcastToOp, x, shape, {}, "BroadcastTo");
}

}  // namespace ad
