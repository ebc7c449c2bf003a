// Elementwise ops, one block each: the builder holds its op's functor, gradient and OpDef, so an
// op lives in one place. Binary arithmetic and comparisons broadcast NumPy-style; the loops are in
// ops/internal/elementwise_kernels.h. Activations (relu, sigmoid, ...) are in activations.cpp.
#include "autodiff/ops/elementwise.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/internal/convert_element.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/elementwise_kernels.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace detail {

Tensor record_binary(const OpDef& op, const Tensor& a, const Tensor& b, BinaryOptions options) {
  if (!a || !b) throw ValueError(str(op.name, ": an operand is an empty Tensor"));
  if (&a.graph() != &b.graph())
    throw ValueError(str(op.name, ": operands belong to different graphs"));
  if (a.dtype() != b.dtype()) {
    throw ValueError(str(op.name, ": operands have different dtypes: '", a.name(), "' is ",
                         a.dtype(), a.shape(), ", '", b.name(), "' is ", b.dtype(), b.shape(),
                         " (use ad::cast)"));
  }
  if (options.numeric_only && a.dtype() == DType::Bool) {
    throw ValueError(str(op.name, ": bool operands are not supported ('", a.name(), "')"));
  }
  const Shape shape = broadcast_static_shape(op.name.data(), a.shape(), b.shape());
  const Tensor inputs[] = {a, b};
  return a.graph().record1(op, inputs, {options.bool_result ? DType::Bool : a.dtype(), shape});
}

Tensor record_unary(const OpDef& op, const Tensor& x, std::any attrs) {
  if (!x) throw ValueError(str(op.name, ": the input is an empty Tensor"));
  if (!is_floating(x.dtype())) {
    throw ValueError(str(op.name, ": '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; expected float32 or float64"));
  }
  const Tensor inputs[] = {x};
  return x.graph().record1(op, inputs, {x.dtype(), x.shape()}, std::move(attrs));
}

}  // namespace detail

namespace {

using detail::arithmetic_kernel;
using detail::compare_kernel;
using detail::record_binary;
using detail::record_unary;
using detail::unary_kernel;

constexpr detail::BinaryOptions kComparison{.bool_result = true, .numeric_only = true};
constexpr detail::BinaryOptions kEquality{.bool_result = true, .numeric_only = false};

// The mask gradient of maximum and minimum: dy goes to a where `take_a` (1 or 0), else to b.
void select_gradient(GradContext& g, const Tensor& take_a) {
  const Tensor dy = g.grad_output(0);
  const Tensor mask = cast(take_a, dy.dtype());
  if (g.wants(0)) g.set(0, sum_to_shape_of(mul(dy, mask), g.input(0)));
  if (g.wants(1)) g.set(1, sum_to_shape_of(mul(dy, sub(scalar_like(mask, 1.0), mask)), g.input(1)));
}

enum class IntegerOp { kDivide, kPower };

// base^exponent for exponent >= 0 by repeated squaring; sets `overflow` when it does not fit.
std::int64_t integer_power(std::int64_t base, std::int64_t exponent, bool& overflow) {
  std::int64_t result = 1;
  while (exponent > 0) {
    if ((exponent & 1) != 0) overflow |= __builtin_mul_overflow(result, base, &result);
    exponent >>= 1;
    if (exponent > 0) overflow |= __builtin_mul_overflow(base, base, &base);
  }
  return result;
}

// Int64 division and power with TF's errors, and an error where the result does not fit. The
// operands are scanned first (the loop may run on OpenMP threads, where nothing may throw);
// an overflow is reported after the loop.
void checked_integer_kernel(KernelContext& ctx, IntegerOp op) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  const auto rhs = b.data<std::int64_t>();
  if (op == IntegerOp::kDivide && std::find(rhs.begin(), rhs.end(), 0) != rhs.end())
    ctx.fail("integer division by zero");
  if (op == IntegerOp::kPower && std::any_of(rhs.begin(), rhs.end(), [](auto e) { return e < 0; }))
    ctx.fail("integers to negative integer powers are not allowed");
  Array& out = ctx.allocate_output(0, detail::runtime_broadcast(ctx, a.shape(), b.shape()));
  std::atomic<bool> overflow{false};
  const auto note = [&overflow](bool happened) {
    if (happened) overflow.store(true, std::memory_order_relaxed);
  };
  using I = std::int64_t;
  if (op == IntegerOp::kDivide) {
    detail::binary_loop<I, I>(a, b, out, [&](I x, I y) {
      const bool wraps = y == -1 && x == std::numeric_limits<I>::min();
      note(wraps);
      return wraps ? x : x / y;
    });
  } else {
    detail::binary_loop<I, I>(a, b, out, [&](I x, I y) {
      bool wraps = false;
      const I r = integer_power(x, y, wraps);
      note(wraps);
      return r;
    });
  }
  if (overflow.load()) {
    ctx.fail(str("integer overflow: an element of ", a.shape(),
                 op == IntegerOp::kDivide ? " / " : " ^ ", b.shape(), " does not fit in int64"));
  }
}

// compare_kernel, also over Int32 and UInt8 operands (labels, pixels), which the comparisons take.
template <class F>
void compare_any_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  if (!is_narrow_integer(a.dtype())) return compare_kernel<F>(ctx);
  Array& out = ctx.allocate_output(0, detail::runtime_broadcast(ctx, a.shape(), b.shape()));
  dispatch_any(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::binary_loop<T, bool>(a, b, out, [](T x, T y) { return static_cast<bool>(F{}(x, y)); });
  });
}

void require_bool(const char* op, const Tensor& a) {
  if (a.dtype() != DType::Bool)
    throw ValueError(str(op, ": '", a.name(), "' is ", a.dtype(), ", not bool"));
}

}  // namespace

// ---- binary arithmetic --------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Add", .kernel = arithmetic_kernel<detail::AddFn>, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        g.set(0, sum_to_shape_of(dy, g.input(0)));
        g.set(1, sum_to_shape_of(dy, g.input(1)));
      }};
  return record_binary(kOp, a, b);
}

Tensor sub(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Sub", .kernel = arithmetic_kernel<detail::SubFn>, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        g.set(0, sum_to_shape_of(dy, g.input(0)));
        if (g.wants(1)) g.set(1, sum_to_shape_of(neg(dy), g.input(1)));
      }};
  return record_binary(kOp, a, b);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Mul", .kernel = arithmetic_kernel<detail::MulFn>, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        if (g.wants(0)) g.set(0, sum_to_shape_of(mul(dy, g.input(1)), g.input(0)));
        if (g.wants(1)) g.set(1, sum_to_shape_of(mul(dy, g.input(0)), g.input(1)));
      }};
  return record_binary(kOp, a, b);
}

// Integers: truncating, and checked as TF checks them (InvalidArgumentError for a zero divisor);
// INT64_MIN / -1, whose quotient does not fit, is an error too rather than a SIGFPE.
Tensor div(const Tensor& a, const Tensor& b) {
  static constexpr auto kKernel = [](KernelContext& ctx) {
    if (ctx.input(0).dtype() == DType::Int64) {
      checked_integer_kernel(ctx, IntegerOp::kDivide);
    } else {
      arithmetic_kernel<detail::DivFn>(ctx);
    }
  };
  static constexpr OpDef kOp{.name = "RealDiv", .kernel = kKernel, .gradient = [](GradContext& g) {
                               const Tensor dy = g.grad_output(0);
                               const Tensor x = g.input(0);
                               const Tensor y = g.input(1);
                               if (g.wants(0)) g.set(0, sum_to_shape_of(div(dy, y), x));
                               if (g.wants(1))
                                 g.set(1, sum_to_shape_of(neg(div(mul(dy, x), mul(y, y))), y));
                             }};
  return record_binary(kOp, a, b);
}

// NaN wins on either side, as in TF's CPU kernels (x != x only for NaN).
Tensor maximum(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{.name = "Maximum",
                             .kernel = arithmetic_kernel<detail::MaximumFn>,
                             .gradient = [](GradContext& g) {
                               select_gradient(g, greater_equal(g.input(0), g.input(1)));
                             }};
  return record_binary(kOp, a, b);
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Minimum",
      .kernel = arithmetic_kernel<detail::MinimumFn>,
      .gradient = [](GradContext& g) { select_gradient(g, less_equal(g.input(0), g.input(1))); }};
  return record_binary(kOp, a, b);
}

// d/da = b a^(b-1); d/db = a^b log(a) where a > 0, else 0 (undefined there). Integers: exact, by
// repeated squaring; a negative exponent (as TF) or an overflow is an InvalidArgumentError.
Tensor pow(const Tensor& a, const Tensor& b) {
  static constexpr auto kKernel = [](KernelContext& ctx) {
    if (ctx.input(0).dtype() == DType::Int64) {
      checked_integer_kernel(ctx, IntegerOp::kPower);
    } else {
      arithmetic_kernel<decltype([](auto x, auto y) { return std::pow(x, y); })>(ctx);
    }
  };
  static constexpr OpDef kOp{
      .name = "Pow", .kernel = kKernel, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        const Tensor x = g.input(0);
        const Tensor y = g.input(1);
        if (g.wants(0))
          g.set(0, sum_to_shape_of(mul(dy, mul(y, pow(x, sub(y, scalar_like(y, 1.0))))), x));
        if (g.wants(1)) {
          const Tensor positive = cast(greater(x, scalar_like(x, 0.0)), x.dtype());
          const Tensor safe_x = add(mul(x, positive), sub(scalar_like(x, 1.0), positive));
          g.set(1, sum_to_shape_of(mul(dy, mul(g.output(0), mul(log(safe_x), positive))), y));
        }
      }};
  return record_binary(kOp, a, b);
}

Tensor squared_difference(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{.name = "SquaredDifference",
                             .kernel = arithmetic_kernel<detail::SquaredDifferenceFn>,
                             .gradient = [](GradContext& g) {
                               const Tensor dy = g.grad_output(0);
                               const Tensor d =
                                   mul(scalar_like(dy, 2.0), mul(dy, sub(g.input(0), g.input(1))));
                               if (g.wants(0)) g.set(0, sum_to_shape_of(d, g.input(0)));
                               if (g.wants(1)) g.set(1, sum_to_shape_of(neg(d), g.input(1)));
                             }};
  return record_binary(kOp, a, b);
}

// ---- comparisons and logic (Bool results, no gradient) ------------------------------------------

Tensor less(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Less",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x < y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kComparison);
}

Tensor less_equal(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "LessEqual",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x <= y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kComparison);
}

Tensor greater(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Greater",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x > y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kComparison);
}

Tensor greater_equal(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "GreaterEqual",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x >= y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kComparison);
}

Tensor equal(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "Equal",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x == y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kEquality);
}

Tensor not_equal(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "NotEqual",
      .kernel = compare_any_kernel<decltype([](auto x, auto y) { return x != y; })>,
      .narrow_integers = true};
  return record_binary(kOp, a, b, kEquality);
}

Tensor logical_and(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "LogicalAnd",
      .kernel = compare_kernel<decltype([](auto x, auto y) { return x && y; })>};
  require_bool("LogicalAnd", a);
  return record_binary(kOp, a, b, kEquality);
}

Tensor logical_or(const Tensor& a, const Tensor& b) {
  static constexpr OpDef kOp{
      .name = "LogicalOr",
      .kernel = compare_kernel<decltype([](auto x, auto y) { return x || y; })>};
  require_bool("LogicalOr", a);
  return record_binary(kOp, a, b, kEquality);
}

Tensor logical_not(const Tensor& a) {
  static constexpr OpDef kOp{.name = "LogicalNot", .kernel = [](KernelContext& ctx) {
                               const Array& x = ctx.input(0);
                               Array& out = ctx.allocate_output(0, x.shape());
                               const auto in = x.data<bool>();
                               auto y = out.mutable_data<bool>();
                               for (std::size_t i = 0; i < in.size(); ++i) y[i] = !in[i];
                             }};
  require_bool("LogicalNot", a);
  const Tensor inputs[] = {a};
  return a.graph().record1(kOp, inputs, {DType::Bool, a.shape()});
}

// ---- unary math ---------------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
  static constexpr OpDef kOp{.name = "Neg",
                             .kernel = unary_kernel<detail::NegFn>,
                             .gradient = [](GradContext& g) { g.set(0, neg(g.grad_output(0))); }};
  return record_unary(kOp, x);
}

Tensor abs(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Abs", .kernel = unary_kernel<detail::AbsFn>, .gradient = [](GradContext& g) {
        g.set(0, mul(g.grad_output(0), sign(g.input(0))));
      }};
  return record_unary(kOp, x);
}

Tensor sign(const Tensor& x) {
  static constexpr auto kSign = [](auto v) {
    using T = decltype(v);
    return static_cast<T>((v > T{0}) - (v < T{0}));
  };
  static constexpr OpDef kOp{.name = "Sign", .kernel = unary_kernel<decltype(kSign)>};
  return record_unary(kOp, x);
}

Tensor exp(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Exp",
      .kernel = unary_kernel<decltype([](auto v) { return std::exp(v); })>,
      .gradient = [](GradContext& g) { g.set(0, mul(g.grad_output(0), g.output(0))); }};
  return record_unary(kOp, x);
}

Tensor log(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Log",
      .kernel = unary_kernel<decltype([](auto v) { return std::log(v); })>,
      .gradient = [](GradContext& g) { g.set(0, div(g.grad_output(0), g.input(0))); }};
  return record_unary(kOp, x);
}

Tensor sqrt(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Sqrt", .kernel = unary_kernel<detail::SqrtFn>, .gradient = [](GradContext& g) {
        g.set(0, div(mul(g.grad_output(0), scalar_like(g.output(0), 0.5)), g.output(0)));
      }};
  return record_unary(kOp, x);
}

// d/dx x^(-1/2) = -y^3 / 2.
Tensor rsqrt(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Rsqrt", .kernel = unary_kernel<detail::RsqrtFn>, .gradient = [](GradContext& g) {
        const Tensor y = g.output(0);
        g.set(0, mul(g.grad_output(0), mul(scalar_like(y, -0.5), mul(y, square(y)))));
      }};
  return record_unary(kOp, x);
}

// d/dx erf(x) = 2 / sqrt(pi) exp(-x^2).
Tensor erf(const Tensor& x) {
  static constexpr OpDef kOp{.name = "Erf",
                             .kernel = unary_kernel<decltype([](auto v) { return std::erf(v); })>,
                             .gradient = [](GradContext& g) {
                               const Tensor in = g.input(0);
                               const Tensor slope =
                                   mul(scalar_like(in, 1.1283791670955126), exp(neg(square(in))));
                               g.set(0, mul(g.grad_output(0), slope));
                             }};
  return record_unary(kOp, x);
}

Tensor square(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Square", .kernel = unary_kernel<detail::SquareFn>, .gradient = [](GradContext& g) {
        g.set(0, mul(g.grad_output(0), mul(scalar_like(g.input(0), 2.0), g.input(0))));
      }};
  return record_unary(kOp, x);
}

Tensor reciprocal(const Tensor& x) {
  static constexpr OpDef kOp{.name = "Reciprocal",
                             .kernel = unary_kernel<detail::ReciprocalFn>,
                             .gradient = [](GradContext& g) {
                               g.set(0, neg(mul(g.grad_output(0), square(g.output(0)))));
                             }};
  return record_unary(kOp, x);
}

// ---- cast ---------------------------------------------------------------------------------------

// The gradient flows back between floating dtypes only.
Tensor cast(const Tensor& x, DType dtype) {
  static constexpr auto kKernel = [](KernelContext& ctx) {
    const Array& in = ctx.input(0);
    Array& out = ctx.allocate_output(0, in.shape());
    dispatch_any(in.dtype(), [&](auto from_tag) {
      using From = decltype(from_tag);
      const From* src = in.data<From>().data();
      dispatch_any(out.dtype(), [&](auto to_tag) {
        using To = decltype(to_tag);
        To* y = out.mutable_data<To>().data();
        const std::int64_t n = in.size();
        for (std::int64_t i = 0; i < n; ++i) y[i] = detail::convert_element<To>(src[i]);
      });
    });
  };
  static constexpr OpDef kOp{.name = "Cast",
                             .kernel = kKernel,
                             .gradient =
                                 [](GradContext& g) {
                                   if (is_floating(g.output(0).dtype()))
                                     g.set(0, cast(g.grad_output(0), g.input(0).dtype()));
                                 },
                             .narrow_integers = true};
  if (!x) throw ValueError("Cast: the input is an empty Tensor");
  if (x.dtype() == dtype) return x;
  const Tensor inputs[] = {x};
  return x.graph().record1(kOp, inputs, {dtype, x.shape()});
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
