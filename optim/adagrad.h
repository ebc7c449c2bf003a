// ad::optim::Adagrad: TF1's AdagradOptimizer. With accumulator acc (slot "accumulator", starts at
// initial_accumulator_value): acc += g²; w -= learning_rate * g / √acc (no epsilon).
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct AdagradOptions {
  Hyperparameter learning_rate{0.01};      // step size η (TF1 has no default)
  double initial_accumulator_value = 0.1;  // must be > 0
  std::string name{"Adagrad"};
};

class Adagrad : public Optimizer {
 public:
  // ValueError when initial_accumulator_value is not positive.
  explicit Adagrad(AdagradOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  AdagradOptions options_;
};

}  // namespace ad::optim
