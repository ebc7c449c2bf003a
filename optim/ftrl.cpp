// Ftrl and its fused in-place op ApplyFtrl (training_ops.cc ApplyFtrl / ApplyFtrlV2 functors,
// with their special case for learning_rate_power = −0.5).
#include "optim/ftrl.h"

#include <cmath>

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

// n^(−p), with √n for the common p = −0.5 (exact, and what TF computes there).
template <class T>
T accum_power(T n, T p) {
  return p == T(-0.5) ? std::sqrt(n) : std::pow(n, -p);
}

// Inputs: var, accum, linear handles, lr, l1, l2 (adjusted), l2_shrinkage, lr_power, grad.
void apply_ftrl_kernel(KernelContext& ctx) {
  const Array& grad = detail::checked_grad(ctx);
  detail::with_variables<3>(ctx, [&](auto tag, const auto& vars) {
    using T = decltype(tag);
    const T lr = detail::scalar_input<T>(ctx, 3);
    const T l1 = detail::scalar_input<T>(ctx, 4);
    const T l2 = detail::scalar_input<T>(ctx, 5);
    const T l2_shrinkage = detail::scalar_input<T>(ctx, 6);
    const T lr_power = detail::scalar_input<T>(ctx, 7);
    T* w = vars[0]->template mutable_data<T>().data();
    T* accum = vars[1]->template mutable_data<T>().data();
    T* linear = vars[2]->template mutable_data<T>().data();
    const T* g = grad.data<T>().data();
    const auto n = static_cast<std::int64_t>(grad.size());
    detail::for_each_element(n, [&](std::int64_t i) {
      const T shrunk_grad = l2_shrinkage > T(0) ? g[i] + T(2) * l2_shrinkage * w[i] : g[i];
      const T new_accum = accum[i] + g[i] * g[i];
      const T new_power = accum_power(new_accum, lr_power);
      linear[i] += shrunk_grad - (new_power - accum_power(accum[i], lr_power)) / lr * w[i];
      const T sign = linear[i] > T(0) ? T(1) : (linear[i] < T(0) ? T(-1) : T(0));
      const T x = l1 * sign - linear[i];
      const T y = new_power / lr + T(2) * l2;
      w[i] = std::abs(linear[i]) > l1 ? x / y : T(0);
      accum[i] = new_accum;
    });
  });
}

const OpDef kApplyFtrlOp{
    .name = "ApplyFtrl", .kernel = apply_ftrl_kernel, .accepts_missing_inputs = true};

void check_non_negative(std::string_view optimizer, std::string_view what, double value) {
  if (value < 0.0) {
    throw ValueError(str(optimizer, ": ", what, " must be positive or zero, got ", value));
  }
}

}  // namespace

Ftrl::Ftrl(FtrlOptions options) : Optimizer(options.name), options_(std::move(options)) {
  check_non_negative(name(), "initial_accumulator_value", options_.initial_accumulator_value);
  if (options_.learning_rate_power > 0.0) {
    throw ValueError(str(name(), ": learning_rate_power must be negative or zero, got ",
                         options_.learning_rate_power));
  }
  check_non_negative(name(), "l1_regularization_strength", options_.l1_regularization_strength);
  check_non_negative(name(), "l2_regularization_strength", options_.l2_regularization_strength);
  check_non_negative(name(), "l2_shrinkage_regularization_strength",
                     options_.l2_shrinkage_regularization_strength);
}

void Ftrl::create_slots(const std::vector<Variable>& vars) {
  for (const auto& v : vars) {
    (void)get_or_make_slot(v, "accum", options_.initial_accumulator_value);
    (void)get_or_make_slot(v, "linear", 0.0);
  }
}

Tensor Ftrl::apply_dense(const Tensor& grad, const Variable& var) {
  const DType dtype = var.dtype();
  const Tensor lr = hyper("learning_rate", options_.learning_rate, dtype);
  // beta folds into l2 as beta/(2η), so the kernel needs no extra input (as in TF).
  Hyperparameter adjusted_l2 = options_.l2_regularization_strength;
  if (options_.beta != 0.0) {
    adjusted_l2 =
        options_.learning_rate.is_tensor()
            ? Hyperparameter(scalar_like(lr, options_.l2_regularization_strength) +
                             scalar_like(lr, options_.beta) /
                                 (maximum(lr, scalar_like(lr, 1e-36)) * 2.0))
            : Hyperparameter(options_.l2_regularization_strength +
                             options_.beta /
                                 (2.0 * std::max(options_.learning_rate.number(), 1e-36)));
  }
  const Variable vars[] = {var, get_slot(var, "accum"), get_slot(var, "linear")};
  const Tensor scalars[] = {
      lr, hyper("l1", options_.l1_regularization_strength, dtype),
      hyper("adjusted_l2", adjusted_l2, dtype),
      hyper("l2_shrinkage", options_.l2_shrinkage_regularization_strength, dtype),
      hyper("learning_rate_power", options_.learning_rate_power, dtype)};
  return detail::record_apply(kApplyFtrlOp, vars, scalars, grad);
}

}  // namespace ad::optim
