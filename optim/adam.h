// ad::optim::Adam: TF1's AdamOptimizer (Kingma & Ba, with TF's epsilon placement). Slots "m" and
// "v" start at 0; beta1_power and beta2_power (one pair per optimizer instance) start at beta1 and
// beta2. Step t: α = η·√(1 − β2^t)/(1 − β1^t); m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
// w -= α·m/(√v + ε); after all variables, beta1_power *= β1 and beta2_power *= β2.
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct AdamOptions {
  Hyperparameter learning_rate{0.001};  // step size η
  Hyperparameter beta1{0.9};            // decay of the first-moment estimate m
  Hyperparameter beta2{0.999};          // decay of the second-moment estimate v
  Hyperparameter epsilon{1e-8};         // added to √v (TF's "epsilon hat")
  std::string name{"Adam"};
};

class Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  void prepare() override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;
  std::vector<Tensor> finish() override;

 private:
  AdamOptions options_;
  Variable beta1_power_;
  Variable beta2_power_;
  Tensor beta1_power_read_;  // this apply_gradients call's reads, before any update
  Tensor beta2_power_read_;
};

}  // namespace ad::optim
