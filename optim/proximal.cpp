// ProximalGradientDescent and ProximalAdagrad with their fused in-place ops
// ApplyProximalGradientDescent and ApplyProximalAdagrad (training_ops.cc functors).
#include "optim/proximal.h"

#include <algorithm>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

// The proximal step for one element: v = w − step·g, then shrink by step·l1 and scale by
// 1/(1 + step·l2).
template <class T>
T proximal_step(T w, T g, T step, T l1, T l2) {
  const T v = w - g * step;
  if (l1 > T(0)) {
    const T sign = v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
    return sign * std::max(std::abs(v) - step * l1, T(0)) / (T(1) + l2 * step);
  }
  return v / (T(1) + l2 * step);
}

// Inputs: var handle, lr, l1, l2, grad.
void apply_proximal_gradient_descent_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<1>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 1);
    const T l1 = detail::scalar_input<T>(ctx, 2);
    const T l2 = detail::scalar_input<T>(ctx, 3);
    T* w = vars[0]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n,
                             [&](std::int64_t i) { w[i] = proximal_step(w[i], g[i], lr, l1, l2); });
  });
}

// Inputs: var, accum handles, lr, l1, l2, grad.
void apply_proximal_adagrad_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<2>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 2);
    const T l1 = detail::scalar_input<T>(ctx, 3);
    const T l2 = detail::scalar_input<T>(ctx, 4);
    T* w = vars[0]->template mutable_data<T>().data();
    T* acc = vars[1]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      acc[i] += g[i] * g[i];
      w[i] = proximal_step(w[i], g[i], lr * (T(1) / std::sqrt(acc[i])), l1, l2);
    });
  });
}

const OpDef kApplyProximalGradientDescentOp{.name = "ApplyProximalGradientDescent",
                                            .kernel = apply_proximal_gradient_descent_kernel,
                                            .accepts_missing_inputs = true};
const OpDef kApplyProximalAdagradOp{.name = "ApplyProximalAdagrad",
                                    .kernel = apply_proximal_adagrad_kernel,
                                    .accepts_missing_inputs = true};

}  // namespace

ProximalGradientDescent::ProximalGradientDescent(ProximalGradientDescentOptions options)
    : Optimizer(options.name), options_(std::move(options)) {}

Tensor ProximalGradientDescent::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Variable vars[] = {var};
  const Tensor scalars[] = {hyper("learning_rate", options_.learning_rate, dtype),
                            hyper("l1", options_.l1_regularization_strength, dtype),
                            hyper("l2", options_.l2_regularization_strength, dtype)};
  return detail::record_apply(kApplyProximalGradientDescentOp, vars, scalars, grad);
}

ProximalAdagrad::ProximalAdagrad(ProximalAdagradOptions options)
    : Optimizer(options.name), options_(std::move(options)) {
  if (!(options_.initial_accumulator_value > 0.0)) {
    throw ValueError(str(name(), ": initial_accumulator_value must be positive, got ",
                         options_.initial_accumulator_value));
  }
}

void ProximalAdagrad::create_slots(const std::vector<Variable>& vars) {
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "accumulator", options_.initial_accumulator_value);
  }
}

Tensor ProximalAdagrad::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Variable vars[] = {var, get_slot(var, "accumulator")};
  const Tensor scalars[] = {hyper("learning_rate", options_.learning_rate, dtype),
                            hyper("l1", options_.l1_regularization_strength, dtype),
                            hyper("l2", options_.l2_regularization_strength, dtype)};
  return detail::record_apply(kApplyProximalAdagradOp, vars, scalars, grad);
}

}  // namespace ad::optim
