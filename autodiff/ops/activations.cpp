// Activations, one block each: the builder holds the op's functor, gradient and OpDef. Adding one
// touches its block here, its line in activations.h and a test line.
#include "autodiff/ops/activations.h"

#include <cmath>
#include <cstdint>
#include <numbers>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/elementwise_kernels.h"

namespace ad {

namespace {

using detail::record_unary;
using detail::unary_kernel;
using detail::unary_param_kernel;
using detail::UnaryParam;

// SELU's constants (Klambauer et al. 2017), as TF and PyTorch round them.
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
// GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
constexpr double kGeluTanhScale = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluTanhCubic = 0.044715;

// dy where x > 0, else `other`: the two-branch gradients below.
Tensor positive_branch(const Tensor& x, const Tensor& dy_positive, const Tensor& other) {
  return where(greater(x, scalar_like(x, 0.0)), dy_positive, other);
}

// dy where x > 0, else 0: relu's gradient as one node (its own gradient is itself again).
Tensor relu_grad(const Tensor& dy, const Tensor& x) {
  static constexpr auto kKernel = [](KernelContext& ctx) {
    const Array& grad = ctx.input(0);
    const Array& in = ctx.input(1);
    Array& out = ctx.allocate_output(0, grad.shape());
    dispatch_floating(in.dtype(), [&](auto tag) {
      using T = decltype(tag);
      GRADTAPE_ISA_KERNEL(binary_elements<detail::ReluGradFn, T>)
      (in.size(), grad.data<T>().data(), 1, in.data<T>().data(), 1, out.mutable_data<T>().data());
    });
  };
  static constexpr OpDef kOp{.name = "ReluGrad", .kernel = kKernel, .gradient = [](GradContext& g) {
                               g.set(0, relu_grad(g.grad_output(0), g.input(1)));
                             }};
  const Tensor inputs[] = {dy, x};
  return x.graph().record1(kOp, inputs, {x.dtype(), x.shape()});
}

}  // namespace

Tensor relu(const Tensor& x) {
  static constexpr OpDef kOp{
      .name = "Relu", .kernel = unary_kernel<detail::ReluFn>, .gradient = [](GradContext& g) {
        g.set(0, relu_grad(g.grad_output(0), g.input(0)));
      }};
  return record_unary(kOp, x);
}

// dy * y (1 - y).
Tensor sigmoid(const Tensor& x) {
  static constexpr auto kSigmoid = [](auto v) {
    using T = decltype(v);
    // Stable on both sides: exp of a non-positive number never overflows.
    if (v >= T{0}) return T{1} / (T{1} + std::exp(-v));
    const T e = std::exp(v);
    return e / (T{1} + e);
  };
  static constexpr OpDef kOp{.name = "Sigmoid",
                             .kernel = unary_kernel<decltype(kSigmoid)>,
                             .gradient = [](GradContext& g) {
                               const Tensor y = g.output(0);
                               g.set(0, mul(g.grad_output(0), mul(y, sub(scalar_like(y, 1.0), y))));
                             }};
  return record_unary(kOp, x);
}

// dy * (1 - y^2).
Tensor tanh(const Tensor& x) {
  static constexpr OpDef kOp{.name = "Tanh",
                             .kernel = unary_kernel<decltype([](auto v) { return std::tanh(v); })>,
                             .gradient = [](GradContext& g) {
                               const Tensor y = g.output(0);
                               g.set(0, mul(g.grad_output(0), sub(scalar_like(y, 1.0), square(y))));
                             }};
  return record_unary(kOp, x);
}

// dy * sigmoid(x).
Tensor softplus(const Tensor& x) {
  static constexpr auto kSoftplus = [](auto v) {
    using T = decltype(v);
    return v > T{0} ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
  };
  static constexpr OpDef kOp{
      .name = "Softplus",
      .kernel = unary_kernel<decltype(kSoftplus)>,
      .gradient = [](GradContext& g) { g.set(0, mul(g.grad_output(0), sigmoid(g.input(0)))); }};
  return record_unary(kOp, x);
}

// x / (1 + |x|); d/dx = 1 / (1 + |x|)^2.
Tensor softsign(const Tensor& x) {
  static constexpr auto kSoftsign = [](auto v) { return v / (decltype(v){1} + std::abs(v)); };
  static constexpr OpDef kOp{
      .name = "Softsign",
      .kernel = unary_kernel<decltype(kSoftsign)>,
      .gradient = [](GradContext& g) {
        const Tensor in = g.input(0);
        g.set(0, div(g.grad_output(0), square(add(scalar_like(in, 1.0), abs(in)))));
      }};
  return record_unary(kOp, x);
}

// x where x > 0, else alpha x (TF's LeakyRelu kernel; alpha > 1 is allowed, as TF).
Tensor leaky_relu(const Tensor& x, double alpha) {
  static constexpr auto kLeaky = [](auto v, auto a) { return v > decltype(v){0} ? v : v * a; };
  static constexpr OpDef kOp{.name = "LeakyRelu",
                             .kernel = unary_param_kernel<decltype(kLeaky)>,
                             .gradient = [](GradContext& g) {
                               const Tensor in = g.input(0);
                               const Tensor dy = g.grad_output(0);
                               const double a = g.attrs<UnaryParam>().value;
                               g.set(0, positive_branch(in, dy, mul(dy, scalar_like(dy, a))));
                             }};
  return record_unary(kOp, x, UnaryParam{alpha});
}

// x where x > 0, else exp(x) - 1; d/dx = 1, else y + 1.
Tensor elu(const Tensor& x) {
  static constexpr auto kElu = [](auto v) { return v > decltype(v){0} ? v : std::expm1(v); };
  static constexpr OpDef kOp{
      .name = "Elu", .kernel = unary_kernel<decltype(kElu)>, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        const Tensor y = g.output(0);
        g.set(0, positive_branch(g.input(0), dy, mul(dy, add(y, scalar_like(y, 1.0)))));
      }};
  return record_unary(kOp, x);
}

// scale x where x > 0, else scale alpha (exp(x) - 1); d/dx = scale, else y + scale alpha.
Tensor selu(const Tensor& x) {
  static constexpr auto kSelu = [](auto v) {
    using T = decltype(v);
    return v > T{0} ? static_cast<T>(kSeluScale) * v
                    : static_cast<T>(kSeluScale * kSeluAlpha) * std::expm1(v);
  };
  static constexpr OpDef kOp{
      .name = "Selu", .kernel = unary_kernel<decltype(kSelu)>, .gradient = [](GradContext& g) {
        const Tensor dy = g.grad_output(0);
        const Tensor y = g.output(0);
        const Tensor negative = mul(dy, add(y, scalar_like(y, kSeluScale * kSeluAlpha)));
        g.set(0, positive_branch(g.input(0), mul(dy, scalar_like(dy, kSeluScale)), negative));
      }};
  return record_unary(kOp, x);
}

// Exact: x Phi(x), d/dx = Phi(x) + x phi(x) with Phi(x) = (1 + erf(x / sqrt(2))) / 2 and
// phi(x) = exp(-x^2 / 2) / sqrt(2 pi). Tanh form: 0.5 x (1 + t), t = tanh(u),
// u = sqrt(2 / pi) (x + 0.044715 x^3), d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx.
Tensor gelu(const Tensor& x, bool approximate) {
  static constexpr auto kExact = [](auto v) {
    using T = decltype(v);
    return T{0.5} * v * (T{1} + std::erf(v * static_cast<T>(std::numbers::sqrt2 / 2)));
  };
  static constexpr auto kTanh = [](auto v) {
    using T = decltype(v);
    const T u = static_cast<T>(kGeluTanhScale) * (v + static_cast<T>(kGeluTanhCubic) * v * v * v);
    return T{0.5} * v * (T{1} + std::tanh(u));
  };
  static constexpr OpDef kExactOp{
      .name = "Gelu", .kernel = unary_kernel<decltype(kExact)>, .gradient = [](GradContext& g) {
        const Tensor in = g.input(0);
        const Tensor cdf =
            mul(scalar_like(in, 0.5),
                add(scalar_like(in, 1.0), erf(mul(in, scalar_like(in, std::numbers::sqrt2 / 2)))));
        const Tensor pdf =
            mul(scalar_like(in, 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2),
                exp(mul(scalar_like(in, -0.5), square(in))));
        g.set(0, mul(g.grad_output(0), add(cdf, mul(in, pdf))));
      }};
  static constexpr OpDef kTanhOp{
      .name = "Gelu", .kernel = unary_kernel<decltype(kTanh)>, .gradient = [](GradContext& g) {
        const Tensor in = g.input(0);
        const Tensor in2 = square(in);
        const Tensor u = mul(scalar_like(in, kGeluTanhScale),
                             add(in, mul(scalar_like(in, kGeluTanhCubic), mul(in2, in))));
        const Tensor t = tanh(u);
        const Tensor du =
            mul(scalar_like(in, kGeluTanhScale),
                add(scalar_like(in, 1.0), mul(scalar_like(in, 3 * kGeluTanhCubic), in2)));
        const Tensor half = scalar_like(in, 0.5);
        const Tensor slope = add(mul(half, add(scalar_like(in, 1.0), t)),
                                 mul(mul(half, in), mul(sub(scalar_like(in, 1.0), square(t)), du)));
        g.set(0, mul(g.grad_output(0), slope));
      }};
  return record_unary(approximate ? kTanhOp : kExactOp, x);
}

// x sigmoid(x); d/dx = s (1 + x (1 - s)) with s = sigmoid(x).
Tensor swish(const Tensor& x) {
  static constexpr auto kSwish = [](auto v) {
    using T = decltype(v);
    if (v >= T{0}) return v / (T{1} + std::exp(-v));
    const T e = std::exp(v);
    return v * e / (T{1} + e);
  };
  static constexpr OpDef kOp{
      .name = "Swish", .kernel = unary_kernel<decltype(kSwish)>, .gradient = [](GradContext& g) {
        const Tensor in = g.input(0);
        const Tensor s = sigmoid(in);
        const Tensor one = scalar_like(in, 1.0);
        g.set(0, mul(g.grad_output(0), mul(s, add(one, mul(in, sub(one, s))))));
      }};
  return record_unary(kOp, x);
}

Tensor silu(const Tensor& x) { return swish(x); }

}  // namespace ad
