// Adam and its fused in-place op ApplyAdam (training_ops.cc ApplyAdamNonCuda, same expression
// order so float32 results round as TF's do).
#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/elementwise.h"
#include "optim/internal/apply_op.h"
#include "optim/internal/update_kernels.h"

namespace ad::optim {

namespace {

// Inputs: var, m, v handles, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad.
void apply_adam_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<3>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T beta1_power = detail::scalar_input<T>(ctx, 3);
    const T beta2_power = detail::scalar_input<T>(ctx, 4);
    const T lr = detail::scalar_input<T>(ctx, 5);
    const T beta1 = detail::scalar_input<T>(ctx, 6);
    const T beta2 = detail::scalar_input<T>(ctx, 7);
    const T epsilon = detail::scalar_input<T>(ctx, 8);
    const T alpha = lr * std::sqrt(T(1) - beta2_power) / (T(1) - beta1_power);
    const T one_minus_beta1 = T(1) - beta1;
    const T one_minus_beta2 = T(1) - beta2;
    GRADTAPE_ISA_KERNEL(adam_update<T>)
    (grad.size(), vars[0]->template mutable_data<T>().data(),
     vars[1]->template mutable_data<T>().data(), vars[2]->template mutable_data<T>().data(),
     grad.data<T>().data(), alpha, one_minus_beta1, one_minus_beta2, epsilon);
  });
}

const OpDef kApplyAdamOp{
    .name = "ApplyAdam", .kernel = apply_adam_kernel, .accepts_missing_inputs = true};

}  // namespace

Adam::Adam(AdamOptions options) : Optimizer(options.name), options_(std::move(options)) {}

void Adam::create_slots(const std::vector<Variable>& vars) {
  // As TF, the beta powers take the dtype of the variable whose name sorts first.
  const auto first = std::min_element(
      vars.begin(), vars.end(), [](const auto& a, const auto& b) { return a.name() < b.name(); });
  Graph& graph = first->graph();
  beta1_power_ = get_or_make_non_slot(graph, "beta1_power", options_.beta1, first->dtype());
  beta2_power_ = get_or_make_non_slot(graph, "beta2_power", options_.beta2, first->dtype());
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "m", 0.0);
    (void)get_or_make_slot(v, "v", 0.0);
  }
}

void Adam::prepare() {
  beta1_power_read_ = beta1_power_.value();
  beta2_power_read_ = beta2_power_.value();
}

Tensor Adam::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Variable vars[] = {var, get_slot(var, "m"), get_slot(var, "v")};
  const Tensor scalars[] = {hyper("beta1_power", beta1_power_read_, dtype),
                            hyper("beta2_power", beta2_power_read_, dtype),
                            hyper("learning_rate", options_.learning_rate, dtype),
                            hyper("beta1", options_.beta1, dtype),
                            hyper("beta2", options_.beta2, dtype),
                            hyper("epsilon", options_.epsilon, dtype)};
  return detail::record_apply(kApplyAdamOp, vars, scalars, grad);
}

std::vector<Tensor> Adam::finish() {
  const DType dtype = beta1_power_.dtype();
  const Tensor beta1 = hyper("beta1", options_.beta1, dtype);
  const Tensor beta2 = hyper("beta2", options_.beta2, dtype);
  return {beta1_power_.assign(beta1_power_.value() * beta1),
          beta2_power_.assign(beta2_power_.value() * beta2)};
}

}  // namespace ad::optim
