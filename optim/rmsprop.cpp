// RMSProp and its fused in-place ops ApplyRMSProp and ApplyCenteredRMSProp (training_ops.cc).
#include "optim/rmsprop.h"

#include <cmath>

#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

// Inputs: var, ms, mom handles, lr, rho (decay), momentum, epsilon, grad.
void apply_rmsprop_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<3>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 3);
    const T one_minus_rho = T(1) - detail::scalar_input<T>(ctx, 4);
    const T momentum = detail::scalar_input<T>(ctx, 5);
    const T epsilon = detail::scalar_input<T>(ctx, 6);
    T* w = vars[0]->template mutable_data<T>().data();
    T* ms = vars[1]->template mutable_data<T>().data();
    T* mom = vars[2]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      ms[i] += (g[i] * g[i] - ms[i]) * one_minus_rho;
      mom[i] = mom[i] * momentum + (g[i] * lr) / std::sqrt(ms[i] + epsilon);
      w[i] -= mom[i];
    });
  });
}

// Inputs: var, mg, ms, mom handles, lr, rho (decay), momentum, epsilon, grad.
void apply_centered_rmsprop_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<4>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 4);
    const T one_minus_rho = T(1) - detail::scalar_input<T>(ctx, 5);
    const T momentum = detail::scalar_input<T>(ctx, 6);
    const T epsilon = detail::scalar_input<T>(ctx, 7);
    T* w = vars[0]->template mutable_data<T>().data();
    T* mg = vars[1]->template mutable_data<T>().data();
    T* ms = vars[2]->template mutable_data<T>().data();
    T* mom = vars[3]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      ms[i] += (g[i] * g[i] - ms[i]) * one_minus_rho;
      mg[i] += (g[i] - mg[i]) * one_minus_rho;
      const T denom = (ms[i] - mg[i] * mg[i]) + epsilon;
      mom[i] = mom[i] * momentum + (g[i] * lr) / std::sqrt(denom);
      w[i] -= mom[i];
    });
  });
}

const OpDef kApplyRMSPropOp{
    .name = "ApplyRMSProp", .kernel = apply_rmsprop_kernel, .accepts_missing_inputs = true};
const OpDef kApplyCenteredRMSPropOp{.name = "ApplyCenteredRMSProp",
                                    .kernel = apply_centered_rmsprop_kernel,
                                    .accepts_missing_inputs = true};

}  // namespace

RMSProp::RMSProp(RMSPropOptions options) : Optimizer(options.name), options_(std::move(options)) {}

void RMSProp::create_slots(const std::vector<Variable>& vars) {
  // TF's creation order, which decides the slot variable names: rms, [mg], momentum.
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "rms", 1.0);
    if (options_.centered) (void)get_or_make_slot(v, "mg", 0.0);
    (void)get_or_make_slot(v, "momentum", 0.0);
  }
}

Tensor RMSProp::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Tensor scalars[] = {
      hyper("learning_rate", options_.learning_rate, dtype), hyper("decay", options_.decay, dtype),
      hyper("momentum", options_.momentum, dtype), hyper("epsilon", options_.epsilon, dtype)};
  if (options_.centered) {
    const Variable vars[] = {var, get_slot(var, "mg"), get_slot(var, "rms"),
                             get_slot(var, "momentum")};
    return detail::record_apply(kApplyCenteredRMSPropOp, vars, scalars, grad);
  }
  const Variable vars[] = {var, get_slot(var, "rms"), get_slot(var, "momentum")};
  return detail::record_apply(kApplyRMSPropOp, vars, scalars, grad);
}

}  // namespace ad::optim
