// Momentum and its fused in-place op ApplyMomentum (training_ops.cc ApplyMomentum functor).
#include "optim/momentum.h"

#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"
#include "optim/internal/update_kernels.h"

namespace ad::optim {

namespace {

// Inputs: var, accum handles, lr, momentum, grad.
void apply_momentum_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  const bool nesterov = ctx.attrs<detail::ApplyAttrs>().flag;
  detail::with_variables<2>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 2);
    const T mu = detail::scalar_input<T>(ctx, 3);
    GRADTAPE_ISA_KERNEL(momentum_update<T>)
    (grad.size(), vars[0]->template mutable_data<T>().data(),
     vars[1]->template mutable_data<T>().data(), grad.data<T>().data(), lr, mu, nesterov);
  });
}

const OpDef kApplyMomentumOp{
    .name = "ApplyMomentum", .kernel = apply_momentum_kernel, .accepts_missing_inputs = true};

}  // namespace

Momentum::Momentum(MomentumOptions options)
    : Optimizer(options.name), options_(std::move(options)) {}

void Momentum::create_slots(const std::vector<Variable>& vars) {
  for (const auto& v : vars) (void)get_or_make_slot(v, "momentum", 0.0);
}

Tensor Momentum::apply_dense(const Tensor& grad, const Variable& var) {
  const Variable vars[] = {var, get_slot(var, "momentum")};
  const Tensor scalars[] = {hyper("learning_rate", options_.learning_rate, var.dtype()),
                            hyper("momentum", options_.momentum, var.dtype())};
  return detail::record_apply(kApplyMomentumOp, vars, scalars, grad, options_.use_nesterov);
}

}  // namespace ad::optim
