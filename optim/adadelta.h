// ad::optim::Adadelta: TF1's AdadeltaOptimizer (Zeiler 2012). Slots "accum" (acc) and
// "accum_update" (accu), both starting at 0: acc = ρ·acc + (1 − ρ)·g²;
// u = √(accu + ε)/√(acc + ε)·g (new acc, old accu); w -= η·u; accu = ρ·accu + (1 − ρ)·u².
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct AdadeltaOptions {
  Hyperparameter learning_rate{0.001};  // η, scales the update (TF1's default; Zeiler uses 1)
  Hyperparameter rho{0.95};             // decay of both running averages
  Hyperparameter epsilon{1e-8};         // conditions both square roots
  std::string name{"Adadelta"};
};

class Adadelta : public Optimizer {
 public:
  explicit Adadelta(AdadeltaOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  AdadeltaOptions options_;
};

}  // namespace ad::optim
