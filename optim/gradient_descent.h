// ad::optim::GradientDescent: TF1's GradientDescentOptimizer, w -= learning_rate * g.
#pragma once

#include <string>

#include "gradtape/optim/optimizer.h"

namespace ad::optim {

struct GradientDescentOptions {
  Hyperparameter learning_rate{0.01};  // step size η
  std::string name{"GradientDescent"};
};

class GradientDescent : public Optimizer {
 public:
  explicit GradientDescent(GradientDescentOptions options = {});

 protected:
  Tensor apply_dense(const Tensor& grad, const Variable& var) override;

 private:
  GradientDescentOptions options_;
};

}  // namespace ad::optim
