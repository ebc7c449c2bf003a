// Adagrad and its fused in-place op ApplyAdagrad (training_ops.cc ApplyAdagrad, update_slots).
#include "optim/adagrad.h"

#include <cmath>

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

// Inputs: var, accum handles, lr, grad.
void apply_adagrad_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<2>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 2);
    T* w = vars[0]->template mutable_data<T>().data();
    T* acc = vars[1]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      acc[i] += g[i] * g[i];
      w[i] -= g[i] * lr * (T(1) / std::sqrt(acc[i]));
    });
  });
}

const OpDef kApplyAdagradOp{
    .name = "ApplyAdagrad", .kernel = apply_adagrad_kernel, .accepts_missing_inputs = true};

}  // namespace

Adagrad::Adagrad(AdagradOptions options) : Optimizer(options.name), options_(std::move(options)) {
  if (!(options_.initial_accumulator_value > 0.0)) {
    throw ValueError(str(name(), ": initial_accumulator_value must be positive, got ",
                         options_.initial_accumulator_value));
  }
}

void Adagrad::create_slots(const std::vector<Variable>& vars) {
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "accumulator", options_.initial_accumulator_value);
  }
}

Tensor Adagrad::apply_dense(const Tensor& grad, const Variable& var) {
  const Variable vars[] = {var, get_slot(var, "accumulator")};
  const Tensor scalars[] = {hyper("learning_rate", options_.learning_rate, var.dtype())};
  return detail::record_apply(kApplyAdagradOp, vars, scalars, grad);
}

}  // namespace ad::optim
