// ad::optim::Ftrl: TF1's FtrlOptimizer (FTRL-Proximal, McMahan et al. 2013). Slots "accum" (n,
// starts at initial_accumulator_value) and "linear" (z, starts at 0). With p = learning_rate_power,
// l2' = l2 + beta/(2·max(η, 1e-36)) and ĝ = g + 2·l2_shrinkage·w:
// n' = n + g²; z += ĝ − (n'^(−p) − n^(−p))/η·w; w = (sign(z)·l1 − z)/(n'^(−p)/η + 2·l2') when
// |z| > l1, else 0; n = n'.
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct FtrlOptions {
  Hyperparameter learning_rate{0.01};                 // η (TF1 has no default)
  double learning_rate_power = -0.5;                  // p ≤ 0; −0.5 is Adagrad-like
  double initial_accumulator_value = 0.1;             // ≥ 0
  double l1_regularization_strength = 0.0;            // ≥ 0
  double l2_regularization_strength = 0.0;            // ≥ 0
  double l2_shrinkage_regularization_strength = 0.0;  // ≥ 0; shrinks w through the gradient
  double beta = 0.0;                                  // added to l2 as beta/(2η)
  std::string name{"Ftrl"};
};

class Ftrl : public Optimizer {
 public:
  // ValueError (as TF) when a strength or initial_accumulator_value is negative or
  // learning_rate_power is positive.
  explicit Ftrl(FtrlOptions options = {});

 protected:
  void create_slots(const std::vector<Variable>& vars) override;
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  FtrlOptions options_;
};

}  // namespace ad::optim
