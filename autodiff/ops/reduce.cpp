// Reductions: builders (axis checks, static shape rule), kernels and gradients recorded as ops. The
// policies that say what each reduction accumulates and the deterministic blockwise loops the
// kernels run are in ops/internal/reduce_loops.h (the float sum, mean, max and min compiled per
// instruction set): results do not depend on the thread count or the instruction set.
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
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/internal/reduce_loops.h"

namespace ad::detail::reduction {

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

}  // namespace ad::detail::reduction

namespace ad {

namespace {

using detail::reduction::ExpSumOp;
using detail::reduction::is_nan;
using detail::reduction::kColumns;
using detail::reduction::kParallelWork;
using detail::reduction::make_plan;
using detail::reduction::MaxOp;
using detail::reduction::MeanOp;
using detail::reduction::MinOp;
using detail::reduction::ProdOp;
using detail::reduction::reduce_into;
using detail::reduction::reduced_shape;
using detail::reduction::ReducePlan;
using detail::reduction::SumOp;

struct ReduceAttrs {
  std::vector<int> axes{};  // sorted, distinct, in [0, rank)
  bool keepdims = false;
};

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
      const T* in = x.data<T>().data();
      T* y = out->mutable_data<T>().data();
      if constexpr (!std::is_floating_point_v<T> || std::is_same_v<OpT<T>, ProdOp<T>>) {
        reduce_into(plan, in, y, OpT<T>{});
      } else if constexpr (std::is_same_v<OpT<T>, SumOp<T>>) {
        GRADTAPE_ISA_KERNEL(reduce_sum<T>)(plan, in, y);
      } else if constexpr (std::is_same_v<OpT<T>, MaxOp<T>>) {
        GRADTAPE_ISA_KERNEL(reduce_max<T>)(plan, in, y);
      } else {
        static_assert(std::is_same_v<OpT<T>, MinOp<T>>);
        GRADTAPE_ISA_KERNEL(reduce_min<T>)(plan, in, y);
      }
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
    } else if constexpr (std::is_floating_point_v<T>) {
      GRADTAPE_ISA_KERNEL(reduce_mean<T>)(plan, x.data<T>().data(), out->mutable_data<T>().data());
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

void check_input(const std::string& who, const Tensor& x, bool allow_int) {
  if (!x) throw ValueError(str(who, ": the input is an empty Tensor"));
  const DType t = x.dtype();
  if (is_floating(t) || (allow_int && t == DType::Int64)) return;
  throw ValueError(str(who, ": '", x.name(), "' is ", t, x.shape(), "; expected ",
                       allow_int ? "float32, float64 or int64" : "float32 or float64",
                       t == DType::Bool ? " (cast it first)" : ""));
}

Tensor record_reduce(const OpDef& def, const char* op, const Tensor& x,
                     const std::vector<int>& axes, bool keepdims, bool allow_int) {
  const std::string node = x ? x.graph().unique_name(def.name, false) : std::string(def.name);
  check_input(str(op, " '", node, "'"), x, allow_int);
  ReduceAttrs attrs{detail::resolve_axes(op, node, x, axes), keepdims};
  const Shape shape = reduced_shape(x.shape(), attrs.axes, keepdims);
  const Tensor inputs[] = {x};
  return x.graph().record1(def, inputs, {x.dtype(), shape}, std::move(attrs));
}

Tensor record_arg(const OpDef& def, const char* op, const Tensor& x, int axis, bool is_max) {
  const std::string who =
      x ? detail::op_label(x.graph(), op, def.name) : str(op, " '", def.name, "'");
  check_input(who, x, true);
  const int rank = x.shape().rank();
  if (axis < -rank || axis >= rank) {
    throw ValueError(str(who, ": axis ", axis, " is out of range for input of shape ", x.shape(),
                         rank == 0 ? " (a scalar has no axes)" : "",
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
