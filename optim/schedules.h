// Learning-rate schedules on the global step (TF1's tf.compat.v1.train.exponential_decay,
// piecewise_constant, cosine_decay). Each returns a scalar Tensor to pass as an optimizer's
// learning_rate; it is recomputed from the step on every run.
#pragma once

#include <string_view>
#include <vector>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/optim/optimizer.h"

namespace ad::optim {

// learning_rate · decay_rate^(global_step / decay_steps), with the exponent floored when
// `staircase`. global_step is a scalar (Int64 or floating). Computed in float64; the result is
// Float64 when learning_rate is a number (optimizers convert it to each variable's dtype, so
// float32 variables see the correctly rounded value), else learning_rate's dtype. No gradient
// flows through it. ValueError when decay_steps is not positive.
[[nodiscard]] Tensor exponential_decay(const Hyperparameter& learning_rate,
                                       const Tensor& global_step, double decay_steps,
                                       double decay_rate, bool staircase = false,
                                       std::string_view name = {});

// values[0] while x <= boundaries[0], values[i] while boundaries[i-1] < x <= boundaries[i], and
// values.back() once x > boundaries.back(). x is a scalar (Int64 or floating); the result has
// `dtype`. ValueError unless values has one more entry than boundaries, boundaries increase
// strictly and nothing is NaN; running it with a NaN x is an InvalidArgumentError.
[[nodiscard]] Tensor piecewise_constant(const Tensor& x, const std::vector<double>& boundaries,
                                        const std::vector<double>& values,
                                        DType dtype = DType::Float64, std::string_view name = {});

// learning_rate · ((1 − alpha)·0.5·(1 + cos(π·min(global_step, decay_steps)/decay_steps)) + alpha):
// a half cosine from learning_rate down to alpha·learning_rate over decay_steps, then flat.
// dtype and gradient as exponential_decay. ValueError when decay_steps is not positive.
[[nodiscard]] Tensor cosine_decay(const Hyperparameter& learning_rate, const Tensor& global_step,
                                  double decay_steps, double alpha = 0.0,
                                  std::string_view name = {});

}  // namespace ad::optim
