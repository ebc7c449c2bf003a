// Adadelta and its fused in-place op ApplyAdadelta (training_ops.cc ApplyAdadelta functor).
#include "optim/adadelta.h"

#include <cmath>

#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

// Inputs: var, accum, accum_update handles, lr, rho, epsilon, grad.
void apply_adadelta_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<3>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 3);
    const T rho = detail::scalar_input<T>(ctx, 4);
    const T epsilon = detail::scalar_input<T>(ctx, 5);
    T* w = vars[0]->template mutable_data<T>().data();
    T* acc = vars[1]->template mutable_data<T>().data();
    T* acc_update = vars[2]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      acc[i] = acc[i] * rho + g[i] * g[i] * (T(1) - rho);
      const T update =
          std::sqrt(acc_update[i] + epsilon) * (T(1) / std::sqrt(acc[i] + epsilon)) * g[i];
      w[i] -= update * lr;
      acc_update[i] = acc_update[i] * rho + update * update * (T(1) - rho);
    });
  });
}

const OpDef kApplyAdadeltaOp{
    .name = "ApplyAdadelta", .kernel = apply_adadelta_kernel, .accepts_missing_inputs = true};

}  // namespace

Adadelta::Adadelta(AdadeltaOptions options)
    : Optimizer(options.name), options_(std::move(options)) {}

void Adadelta::create_slots(const std::vector<Variable>& vars) {
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "accum", 0.0);
    (void)get_or_make_slot(v, "accum_update", 0.0);
  }
}

Tensor Adadelta::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Variable vars[] = {var, get_slot(var, "accum"), get_slot(var, "accum_update")};
  const Tensor scalars[] = {hyper("learning_rate", options_.learning_rate, dtype),
                            hyper("rho", options_.rho, dtype),
                            hyper("epsilon", options_.epsilon, dtype)};
  return detail::record_apply(kApplyAdadeltaOp, vars, scalars, grad);
}

}  // namespace ad::optim
