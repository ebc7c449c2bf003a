// Activations, one block each: the builder holds the op's functor, gradient and OpDef. Adding one
// touches its block here, its line in activations.h and a test line.
#include "autodiff/ops/activations.h"

#include <cmath>
#include <cstdint>

#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/elementwise_kernels.h"

namespace ad {

namespace {

using detail::record_unary;
using detail::unary_kernel;

// dy where x > 0, else 0: relu's gradient as one node (its own gradient is itself again).
Tensor relu_grad(const Tensor& dy, const Tensor& x) {
  static constexpr auto kKernel = [](KernelContext& ctx) {
    const Array& grad = ctx.input(0);
    const Array& in = ctx.input(1);
    Array& out = ctx.allocate_output(0, grad.shape());
    dispatch_floating(in.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* g = grad.data<T>().data();
      const T* v = in.data<T>().data();
      T* y = out.mutable_data<T>().data();
      // Both values loaded before the select, so it vectorizes branch-free (relu's mask is
      // random: a branch would mispredict half the time).
      detail::for_each_element(in.size(), [&](std::int64_t i) {
        const T gv = g[i];
        y[i] = v[i] > T{0} ? gv : T{0};
      });
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
  static constexpr auto kRelu = [](auto v) { return v > decltype(v){0} ? v : decltype(v){0}; };
  static constexpr OpDef kOp{
      .name = "Relu", .kernel = unary_kernel<decltype(kRelu)>, .gradient = [](GradContext& g) {
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

}  // namespace ad
