// ad::optim::RMSProp: TF1's RMSPropOptimizer. Slots "rms" (ms, starts at 1), "momentum" (mom, 0)
// and, when centered, "mg" (0): ms += (g² − ms)(1 − decay); [mg += (g − mg)(1 − decay)];
// mom = momentum·mom + η·g/√(ms [− mg²] + ε); w -= mom. (Keras's RMSprop differs: rms starts at 0.)
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct RMSPropOptions {
  Hyperparameter learning_rate{0.01};  // step size η (TF1 has no default)
  Hyperparameter decay{0.9};           // discount of the running mean of g²
  Hyperparameter momentum{0.0};        // weight of the previous step
  Hyperparameter epsilon{1e-10};       // added under the square root
  bool centered = false;               // divide by the estimated variance instead of E[g²]
  std::string name{"RMSProp"};
};

class RMSProp : public Optimizer {
 public:
  explicit RMSProp(RMSPropOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  RMSPropOptions options_;
};

}  // namespace ad::optim
