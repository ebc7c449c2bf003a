// ad::optim::Momentum: TF1's MomentumOptimizer. With accumulator a (slot "momentum", starts at 0):
// a = momentum * a + g; w -= learning_rate * a, or with Nesterov
// w -= learning_rate * g + learning_rate * momentum * a (using the new a).
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct MomentumOptions {
  Hyperparameter learning_rate{0.01};  // step size η (TF1 has no default)
  Hyperparameter momentum{0.9};        // weight μ of the previous accumulator (TF1 has no default)
  bool use_nesterov = false;
  std::string name{"Momentum"};
};

class Momentum : public Optimizer {
 public:
  explicit Momentum(MomentumOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  MomentumOptions options_;
};

}  // namespace ad::optim
