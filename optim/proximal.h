// The proximal optimizers of TF1 (FOBOS, Duchi & Singer 2009): a gradient step, then the
// proximal operator of l1·|w| + l2/2·w². With step η' (η for ProximalGradientDescent, η/√acc for
// ProximalAdagrad after acc += g²): v = w − η'·g; w = sign(v)·max(|v| − η'·l1, 0)/(1 + η'·l2)
// when l1 > 0, else v/(1 + η'·l2).
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct ProximalGradientDescentOptions {
  Hyperparameter learning_rate{0.01};              // η (TF1 has no default)
  Hyperparameter l1_regularization_strength{0.0};  // l1 ≥ 0
  Hyperparameter l2_regularization_strength{0.0};  // l2 ≥ 0
  std::string name{"ProximalGradientDescent"};
};

class ProximalGradientDescent : public Optimizer {
 public:
  explicit ProximalGradientDescent(ProximalGradientDescentOptions options = {});

 protected:
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  ProximalGradientDescentOptions options_;
};

struct ProximalAdagradOptions {
  Hyperparameter learning_rate{0.01};              // η (TF1 has no default)
  double initial_accumulator_value = 0.1;          // slot "accumulator"; must be > 0
  Hyperparameter l1_regularization_strength{0.0};  // l1 ≥ 0
  Hyperparameter l2_regularization_strength{0.0};  // l2 ≥ 0
  std::string name{"ProximalAdagrad"};
};

class ProximalAdagrad : public Optimizer {
 public:
  // ValueError when initial_accumulator_value is not positive.
  explicit ProximalAdagrad(ProximalAdagradOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  ProximalAdagradOptions options_;
};

}  // namespace ad::optim
