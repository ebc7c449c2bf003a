// This project's own layers/dense.h (gradtape has one too): one gradient-descent step of a
// one-input linear model y = w x + b on the mean squared error, in plain double arithmetic.
#pragma once

#include <cstddef>
#include <vector>

namespace app::layers {

struct Linear {
  double w = 0;
  double b = 0;
};

// (w, b) - learning_rate * d/d(w, b) of mean((w x + b - y)^2) over the points.
inline Linear mse_step(Linear p, const std::vector<double>& x, const std::vector<double>& y,
                       double learning_rate) {
  double grad_w = 0;
  double grad_b = 0;
  const double n = static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double residual = p.w * x[i] + p.b - y[i];
    grad_w += 2 * residual * x[i] / n;
    grad_b += 2 * residual / n;
  }
  return {p.w - learning_rate * grad_w, p.b - learning_rate * grad_b};
}

}  // namespace app::layers
