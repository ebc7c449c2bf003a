// GradientDescent and its fused in-place op ApplyGradientDescent (training_ops.cc: var -= grad*lr).
#include "optim/gradient_descent.h"

#include "autodiff/kernel.h"
#include "optim/internal/apply_op.h"
#include "optim/internal/update_kernels.h"

namespace ad::optim {

namespace {

// Inputs: var handle, lr, grad.
void apply_gradient_descent_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<1>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 1);
    GRADTAPE_ISA_KERNEL(gradient_descent_update<T>)
    (grad.size(), vars[0]->template mutable_data<T>().data(), grad.data<T>().data(), lr);
  });
}

const OpDef kApplyGradientDescentOp{.name = "ApplyGradientDescent",
                                    .kernel = apply_gradient_descent_kernel,
                                    .accepts_missing_inputs = true};

}  // namespace

GradientDescent::GradientDescent(GradientDescentOptions options)
    : Optimizer(options.name), options_(std::move(options)) {}

Tensor GradientDescent::apply_dense(const Tensor& grad, const Variable& var) {
  const Tensor lr = hyper("learning_rate", options_.learning_rate, var.dtype());
  const Variable vars[] = {var};
  const Tensor scalars[] = {lr};
  return detail::record_apply(kApplyGradientDescentOp, vars, scalars, grad);
}

}  // namespace ad::optim
