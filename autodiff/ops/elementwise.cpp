// Elementwise kernels and gradients. Binary ops broadcast NumPy-style: a same-shape fast path, a
// scalar fast path, and otherwise contiguous runs from a broadcast plan. Large loops use OpenMP.
#include "autodiff/ops/elementwise.h"

#include <cmath>
#include <cstdint>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace {

using detail::for_each_element;
using detail::kParallelElements;

// ---- binary kernels -----------------------------------------------------------------------------

Shape runtime_broadcast(const KernelContext& ctx, const Shape& a, const Shape& b) {
  const auto out = detail::broadcast_shapes({&a, &b});
  if (!out) ctx.fail(str("shapes ", a, " and ", b, " cannot be broadcast"));
  return *out;
}

template <class In, class Out, class F>
void binary_loop(const Array& a, const Array& b, Array& out, F f) {
  const In* x = a.data<In>().data();
  const In* y = b.data<In>().data();
  Out* z = out.mutable_data<Out>().data();
  const std::int64_t n = out.size();
  if (a.size() == n && b.size() == n) {
    for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], y[i]); });
    return;
  }
  if (b.size() == 1 && a.size() == n) {
    const In s = y[0];
    for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], s); });
    return;
  }
  if (a.size() == 1 && b.size() == n) {
    const In s = x[0];
    for_each_element(n, [&](std::int64_t i) { z[i] = f(s, y[i]); });
    return;
  }
  const auto plan = detail::make_broadcast_plan(out.shape(), a.shape(), b.shape());
  detail::for_each_run(plan, [&](std::int64_t o, std::int64_t ao, std::int64_t bo, std::int64_t len,
                                 std::int64_t sa, std::int64_t sb) {
    Out* zo = z + o;
    const In* xo = x + ao;
    const In* yo = y + bo;
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(xo[i], yo[i]);
    } else if (sa == 1) {
      const In s = yo[0];
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(xo[i], s);
    } else if (sb == 1) {
      const In s = xo[0];
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(s, yo[i]);
    } else {
      const Out v = f(xo[0], yo[0]);
      for (std::int64_t i = 0; i < len; ++i) zo[i] = v;
    }
  });
}

template <class F>
void arithmetic_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  Array& out = ctx.allocate_output(0, runtime_broadcast(ctx, a.shape(), b.shape()));
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("arithmetic on bool tensors is not supported");
    } else {
      binary_loop<T, T>(a, b, out, F{});
    }
  });
}

template <class F>
void compare_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  Array& out = ctx.allocate_output(0, runtime_broadcast(ctx, a.shape(), b.shape()));
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    binary_loop<T, bool>(a, b, out, F{});
  });
}

struct AddF {
  template <class T>
  T operator()(T a, T b) const {
    return a + b;
  }
};
struct SubF {
  template <class T>
  T operator()(T a, T b) const {
    return a - b;
  }
};
struct MulF {
  template <class T>
  T operator()(T a, T b) const {
    return a * b;
  }
};
struct DivF {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      return b == 0 ? T{0} : a / b;
    } else {
      return a / b;
    }
  }
};
struct MaxF {
  template <class T>
  T operator()(T a, T b) const {
    return a >= b ? a : b;
  }
};
struct MinF {
  template <class T>
  T operator()(T a, T b) const {
    return a <= b ? a : b;
  }
};
struct PowF {
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(std::pow(a, b));
  }
};
struct SquaredDifferenceF {
  template <class T>
  T operator()(T a, T b) const {
    return (a - b) * (a - b);
  }
};
struct LessF {
  template <class T>
  bool operator()(T a, T b) const {
    return a < b;
  }
};
struct LessEqualF {
  template <class T>
  bool operator()(T a, T b) const {
    return a <= b;
  }
};
struct GreaterF {
  template <class T>
  bool operator()(T a, T b) const {
    return a > b;
  }
};
struct GreaterEqualF {
  template <class T>
  bool operator()(T a, T b) const {
    return a >= b;
  }
};
struct EqualF {
  template <class T>
  bool operator()(T a, T b) const {
    return a == b;
  }
};
struct NotEqualF {
  template <class T>
  bool operator()(T a, T b) const {
    return a != b;
  }
};
struct AndF {
  template <class T>
  bool operator()(T a, T b) const {
    return a && b;
  }
};
struct OrF {
  template <class T>
  bool operator()(T a, T b) const {
    return a || b;
  }
};

// ---- binary gradients ---------------------------------------------------------------------------

void add_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  g.set(0, sum_to_shape_of(dy, g.input(0)));
  g.set(1, sum_to_shape_of(dy, g.input(1)));
}
void sub_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  g.set(0, sum_to_shape_of(dy, g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(neg(dy), g.input(1)));
}
void mul_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  if (g.wants(0)) g.set(0, sum_to_shape_of(mul(dy, g.input(1)), g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(mul(dy, g.input(0)), g.input(1)));
}
void div_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor a = g.input(0);
  const Tensor b = g.input(1);
  if (g.wants(0)) g.set(0, sum_to_shape_of(div(dy, b), a));
  if (g.wants(1)) g.set(1, sum_to_shape_of(neg(div(mul(dy, a), mul(b, b))), b));
}
void maximum_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor mask = cast(greater_equal(g.input(0), g.input(1)), dy.dtype());
  if (g.wants(0)) g.set(0, sum_to_shape_of(mul(dy, mask), g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(mul(dy, sub(scalar_like(mask, 1.0), mask)), g.input(1)));
}
void minimum_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor mask = cast(less_equal(g.input(0), g.input(1)), dy.dtype());
  if (g.wants(0)) g.set(0, sum_to_shape_of(mul(dy, mask), g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(mul(dy, sub(scalar_like(mask, 1.0), mask)), g.input(1)));
}
void pow_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor a = g.input(0);
  const Tensor b = g.input(1);
  if (g.wants(0))
    g.set(0, sum_to_shape_of(mul(dy, mul(b, pow(a, sub(b, scalar_like(b, 1.0))))), a));
  if (g.wants(1)) {
    // log(a) where a > 0, else 0 (the gradient for b is undefined there).
    const Tensor positive = cast(greater(a, scalar_like(a, 0.0)), a.dtype());
    const Tensor safe_a = add(mul(a, positive), sub(scalar_like(a, 1.0), positive));
    g.set(1, sum_to_shape_of(mul(dy, mul(g.output(0), mul(log(safe_a), positive))), b));
  }
}
void squared_difference_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor d = mul(scalar_like(dy, 2.0), mul(dy, sub(g.input(0), g.input(1))));
  if (g.wants(0)) g.set(0, sum_to_shape_of(d, g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(neg(d), g.input(1)));
}

const OpDef kAddOp{.name = "Add", .kernel = arithmetic_kernel<AddF>, .gradient = add_gradient};
const OpDef kSubOp{.name = "Sub", .kernel = arithmetic_kernel<SubF>, .gradient = sub_gradient};
const OpDef kMulOp{.name = "Mul", .kernel = arithmetic_kernel<MulF>, .gradient = mul_gradient};
const OpDef kDivOp{.name = "RealDiv", .kernel = arithmetic_kernel<DivF>, .gradient = div_gradient};
const OpDef kMaximumOp{
    .name = "Maximum", .kernel = arithmetic_kernel<MaxF>, .gradient = maximum_gradient};
const OpDef kMinimumOp{
    .name = "Minimum", .kernel = arithmetic_kernel<MinF>, .gradient = minimum_gradient};
const OpDef kPowOp{.name = "Pow", .kernel = arithmetic_kernel<PowF>, .gradient = pow_gradient};
const OpDef kSquaredDifferenceOp{.name = "SquaredDifference",
                                 .kernel = arithmetic_kernel<SquaredDifferenceF>,
                                 .gradient = squared_difference_gradient};
const OpDef kLessOp{.name = "Less", .kernel = compare_kernel<LessF>};
const OpDef kLessEqualOp{.name = "LessEqual", .kernel = compare_kernel<LessEqualF>};
const OpDef kGreaterOp{.name = "Greater", .kernel = compare_kernel<GreaterF>};
const OpDef kGreaterEqualOp{.name = "GreaterEqual", .kernel = compare_kernel<GreaterEqualF>};
const OpDef kEqualOp{.name = "Equal", .kernel = compare_kernel<EqualF>};
const OpDef kNotEqualOp{.name = "NotEqual", .kernel = compare_kernel<NotEqualF>};
const OpDef kLogicalAndOp{.name = "LogicalAnd", .kernel = compare_kernel<AndF>};
const OpDef kLogicalOrOp{.name = "LogicalOr", .kernel = compare_kernel<OrF>};

Tensor record_binary(const OpDef& op, const Tensor& a, const Tensor& b, bool boolean_result,
                     bool numeric_only) {
  if (!a || !b) throw ValueError(str(op.name, ": an operand is an empty Tensor"));
  if (&a.graph() != &b.graph())
    throw ValueError(str(op.name, ": operands belong to different graphs"));
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(op.name, ": operands have different dtypes: '", a.name(), "' is ",
                         a.dtype(), a.shape(), ", '", b.name(), "' is ", b.dtype(), b.shape(),
                         " (use ad::cast)"));
  }
  if (numeric_only && a.dtype() == DType::Bool) {
    throw ValueError(str(op.name, ": bool operands are not supported ('", a.name(), "')"));
  }
  const Shape shape = broadcast_static_shape(op.name.data(), a.shape(), b.shape());
  const Tensor inputs[] = {a, b};
  return a.graph().record1(op, inputs, {boolean_result ? DType::Bool : a.dtype(), shape});
}

// ---- unary kernels ------------------------------------------------------------------------------

template <class F>
void unary_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t n = x.size();
    const F f{};
    for_each_element(n, [&](std::int64_t i) { y[i] = f(in[i]); });
  });
}

struct NegF {
  template <class T>
  T operator()(T x) const {
    return -x;
  }
};
struct AbsF {
  template <class T>
  T operator()(T x) const {
    return std::abs(x);
  }
};
struct SignF {
  template <class T>
  T operator()(T x) const {
    return static_cast<T>((x > T{0}) - (x < T{0}));
  }
};
struct ExpF {
  template <class T>
  T operator()(T x) const {
    return std::exp(x);
  }
};
struct LogF {
  template <class T>
  T operator()(T x) const {
    return std::log(x);
  }
};
struct SqrtF {
  template <class T>
  T operator()(T x) const {
    return std::sqrt(x);
  }
};
struct RsqrtF {
  template <class T>
  T operator()(T x) const {
    return T{1} / std::sqrt(x);
  }
};
struct SquareF {
  template <class T>
  T operator()(T x) const {
    return x * x;
  }
};
struct ReciprocalF {
  template <class T>
  T operator()(T x) const {
    return T{1} / x;
  }
};
struct ReluF {
  template <class T>
  T operator()(T x) const {
    return x > T{0} ? x : T{0};
  }
};
struct SigmoidF {
  template <class T>
  T operator()(T x) const {
    // Stable on both sides: exp of a non-positive number never overflows.
    if (x >= T{0}) return T{1} / (T{1} + std::exp(-x));
    const T e = std::exp(x);
    return e / (T{1} + e);
  }
};
struct TanhF {
  template <class T>
  T operator()(T x) const {
    return std::tanh(x);
  }
};
struct SoftplusF {
  template <class T>
  T operator()(T x) const {
    return x > T{0} ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
};

// dy where x > 0, else 0: relu's gradient as one node.
void relu_grad_kernel(KernelContext& ctx) {
  const Array& dy = ctx.input(0);
  const Array& x = ctx.input(1);
  Array& out = ctx.allocate_output(0, dy.shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = dy.data<T>().data();
    const T* in = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t n = x.size();
    // Both values loaded before the select, so it vectorizes branch-free (relu's mask is random:
    // a branch would mispredict half the time).
    for_each_element(n, [&](std::int64_t i) {
      const T gv = g[i];
      y[i] = in[i] > T{0} ? gv : T{0};
    });
  });
}

Tensor relu_grad(const Tensor& dy, const Tensor& x);

void relu_grad_gradient(GradContext& g) { g.set(0, relu_grad(g.grad_output(0), g.input(1))); }

void neg_gradient(GradContext& g) { g.set(0, neg(g.grad_output(0))); }
void abs_gradient(GradContext& g) { g.set(0, mul(g.grad_output(0), sign(g.input(0)))); }
void exp_gradient(GradContext& g) { g.set(0, mul(g.grad_output(0), g.output(0))); }
void log_gradient(GradContext& g) { g.set(0, div(g.grad_output(0), g.input(0))); }
void sqrt_gradient(GradContext& g) {
  g.set(0, div(mul(g.grad_output(0), scalar_like(g.output(0), 0.5)), g.output(0)));
}
void rsqrt_gradient(GradContext& g) {
  const Tensor y = g.output(0);
  g.set(0, mul(g.grad_output(0), mul(scalar_like(y, -0.5), mul(y, square(y)))));
}
void square_gradient(GradContext& g) {
  g.set(0, mul(g.grad_output(0), mul(scalar_like(g.input(0), 2.0), g.input(0))));
}
void reciprocal_gradient(GradContext& g) {
  g.set(0, neg(mul(g.grad_output(0), square(g.output(0)))));
}
void relu_gradient(GradContext& g) { g.set(0, relu_grad(g.grad_output(0), g.input(0))); }
void sigmoid_gradient(GradContext& g) {
  const Tensor y = g.output(0);
  g.set(0, mul(g.grad_output(0), mul(y, sub(scalar_like(y, 1.0), y))));
}
void tanh_gradient(GradContext& g) {
  const Tensor y = g.output(0);
  g.set(0, mul(g.grad_output(0), sub(scalar_like(y, 1.0), square(y))));
}
void softplus_gradient(GradContext& g) { g.set(0, mul(g.grad_output(0), sigmoid(g.input(0)))); }

const OpDef kNegOp{.name = "Neg", .kernel = unary_kernel<NegF>, .gradient = neg_gradient};
const OpDef kAbsOp{.name = "Abs", .kernel = unary_kernel<AbsF>, .gradient = abs_gradient};
const OpDef kSignOp{.name = "Sign", .kernel = unary_kernel<SignF>};
const OpDef kExpOp{.name = "Exp", .kernel = unary_kernel<ExpF>, .gradient = exp_gradient};
const OpDef kLogOp{.name = "Log", .kernel = unary_kernel<LogF>, .gradient = log_gradient};
const OpDef kSqrtOp{.name = "Sqrt", .kernel = unary_kernel<SqrtF>, .gradient = sqrt_gradient};
const OpDef kRsqrtOp{.name = "Rsqrt", .kernel = unary_kernel<RsqrtF>, .gradient = rsqrt_gradient};
const OpDef kSquareOp{
    .name = "Square", .kernel = unary_kernel<SquareF>, .gradient = square_gradient};
const OpDef kReciprocalOp{
    .name = "Reciprocal", .kernel = unary_kernel<ReciprocalF>, .gradient = reciprocal_gradient};
const OpDef kReluOp{.name = "Relu", .kernel = unary_kernel<ReluF>, .gradient = relu_gradient};
const OpDef kReluGradOp{
    .name = "ReluGrad", .kernel = relu_grad_kernel, .gradient = relu_grad_gradient};
const OpDef kSigmoidOp{
    .name = "Sigmoid", .kernel = unary_kernel<SigmoidF>, .gradient = sigmoid_gradient};
const OpDef kTanhOp{.name = "Tanh", .kernel = unary_kernel<TanhF>, .gradient = tanh_gradient};
const OpDef kSoftplusOp{
    .name = "Softplus", .kernel = unary_kernel<SoftplusF>, .gradient = softplus_gradient};

Tensor record_unary(const OpDef& op, const Tensor& x) {
  if (!x) throw ValueError(str(op.name, ": the input is an empty Tensor"));
  if (!is_floating(x.dtype())) {
    throw ValueError(str(op.name, ": '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; expected float32 or float64"));
  }
  const Tensor inputs[] = {x};
  return x.graph().record1(op, inputs, {x.dtype(), x.shape()});
}

Tensor relu_grad(const Tensor& dy, const Tensor& x) {
  const Tensor inputs[] = {dy, x};
  return x.graph().record1(kReluGradOp, inputs, {x.dtype(), x.shape()});
}

// ---- logical not, cast --------------------------------------------------------------------------

void logical_not_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  const auto in = x.data<bool>();
  auto y = out.mutable_data<bool>();
  for (std::size_t i = 0; i < in.size(); ++i) y[i] = !in[i];
}
const OpDef kLogicalNotOp{.name = "LogicalNot", .kernel = logical_not_kernel};

void cast_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  const DType to = ctx.node().outputs[0].dtype;
  Array& out = ctx.allocate_output(0, x.shape());
  dispatch_all(x.dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    const From* in = x.data<From>().data();
    dispatch_all(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      To* y = out.mutable_data<To>().data();
      const std::int64_t n = x.size();
      for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<To>(in[i]);
    });
  });
}
void cast_gradient(GradContext& g) {
  if (is_floating(g.output(0).dtype())) g.set(0, cast(g.grad_output(0), g.input(0).dtype()));
}
const OpDef kCastOp{.name = "Cast", .kernel = cast_kernel, .gradient = cast_gradient};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return record_binary(kAddOp, a, b, false, true); }
Tensor sub(const Tensor& a, const Tensor& b) { return record_binary(kSubOp, a, b, false, true); }
Tensor mul(const Tensor& a, const Tensor& b) { return record_binary(kMulOp, a, b, false, true); }
Tensor div(const Tensor& a, const Tensor& b) { return record_binary(kDivOp, a, b, false, true); }
Tensor maximum(const Tensor& a, const Tensor& b) {
  return record_binary(kMaximumOp, a, b, false, true);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return record_binary(kMinimumOp, a, b, false, true);
}
Tensor pow(const Tensor& a, const Tensor& b) { return record_binary(kPowOp, a, b, false, true); }
Tensor squared_difference(const Tensor& a, const Tensor& b) {
  return record_binary(kSquaredDifferenceOp, a, b, false, true);
}
Tensor less(const Tensor& a, const Tensor& b) { return record_binary(kLessOp, a, b, true, true); }
Tensor less_equal(const Tensor& a, const Tensor& b) {
  return record_binary(kLessEqualOp, a, b, true, true);
}
Tensor greater(const Tensor& a, const Tensor& b) {
  return record_binary(kGreaterOp, a, b, true, true);
}
Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return record_binary(kGreaterEqualOp, a, b, true, true);
}
Tensor equal(const Tensor& a, const Tensor& b) {
  return record_binary(kEqualOp, a, b, true, false);
}
Tensor not_equal(const Tensor& a, const Tensor& b) {
  return record_binary(kNotEqualOp, a, b, true, false);
}
Tensor logical_and(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DType::Bool)
    throw ValueError(str("LogicalAnd: '", a.name(), "' is ", a.dtype(), ", not bool"));
  return record_binary(kLogicalAndOp, a, b, true, false);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DType::Bool)
    throw ValueError(str("LogicalOr: '", a.name(), "' is ", a.dtype(), ", not bool"));
  return record_binary(kLogicalOrOp, a, b, true, false);
}
Tensor logical_not(const Tensor& a) {
  if (a.dtype() != DType::Bool)
    throw ValueError(str("LogicalNot: '", a.name(), "' is ", a.dtype(), ", not bool"));
  const Tensor inputs[] = {a};
  return a.graph().record1(kLogicalNotOp, inputs, {DType::Bool, a.shape()});
}

Tensor neg(const Tensor& x) { return record_unary(kNegOp, x); }
Tensor abs(const Tensor& x) { return record_unary(kAbsOp, x); }
Tensor sign(const Tensor& x) { return record_unary(kSignOp, x); }
Tensor exp(const Tensor& x) { return record_unary(kExpOp, x); }
Tensor log(const Tensor& x) { return record_unary(kLogOp, x); }
Tensor sqrt(const Tensor& x) { return record_unary(kSqrtOp, x); }
Tensor rsqrt(const Tensor& x) { return record_unary(kRsqrtOp, x); }
Tensor square(const Tensor& x) { return record_unary(kSquareOp, x); }
Tensor reciprocal(const Tensor& x) { return record_unary(kReciprocalOp, x); }
Tensor relu(const Tensor& x) { return record_unary(kReluOp, x); }
Tensor sigmoid(const Tensor& x) { return record_unary(kSigmoidOp, x); }
Tensor tanh(const Tensor& x) { return record_unary(kTanhOp, x); }
Tensor softplus(const Tensor& x) { return record_unary(kSoftplusOp, x); }

Tensor cast(const Tensor& x, DType dtype) {
  if (!x) throw ValueError("Cast: the input is an empty Tensor");
  if (x.dtype() == dtype) return x;
  const Tensor inputs[] = {x};
  return x.graph().record1(kCastOp, inputs, {dtype, x.shape()});
}

Tensor scalar_like(const Tensor& x, double value) { return scalar(x.graph(), value, x.dtype()); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(b, a), b); }
Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace ad
