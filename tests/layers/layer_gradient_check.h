// Test helper for layers: finite-difference checks of gradients with respect to a layer's
// variables (which cannot be fed like placeholders), by setting their values in the session.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "autodiff/array.h"
#include "autodiff/gradients.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "autodiff/variable.h"

namespace ad::testing {

// max over the elements of `variable` (float64) of |symbolic - numeric| / max(1, |numeric|) for
// d(sum(r * y))/d(variable), r a fixed random projection; central differences with step 1e-5.
inline double variable_gradient_error(Session& session, const Tensor& y, const Variable& variable,
                                      const FeedDict& feeds = {}, std::uint64_t seed = 7) {
  const Array y0 = session.eval(y, feeds);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> r(static_cast<std::size_t>(y0.size()));
  for (auto& v : r) v = normal(rng);
  Graph& graph = y.graph();
  const Tensor projected =
      reduce_sum(y * constant(graph, Array::from(std::span<const double>(r), y0.shape())));
  const Tensor grad = gradients(projected, {variable})[0];
  const Array symbolic = session.eval(grad, feeds);
  const Array original = session.value(variable).clone();
  double worst = 0;
  const double delta = 1e-5;
  for (std::int64_t k = 0; k < original.size(); ++k) {
    Array plus = original.clone();
    Array minus = original.clone();
    plus.mutable_data<double>()[static_cast<std::size_t>(k)] += delta;
    minus.mutable_data<double>()[static_cast<std::size_t>(k)] -= delta;
    session.set_value(variable, plus);
    const double fp = session.eval(projected, feeds).item<double>();
    session.set_value(variable, minus);
    const double fm = session.eval(projected, feeds).item<double>();
    const double numeric = (fp - fm) / (2 * delta);
    const double s = symbolic.data<double>()[static_cast<std::size_t>(k)];
    worst = std::max(worst, std::abs(s - numeric) / std::max(1.0, std::abs(numeric)));
  }
  session.set_value(variable, original);
  return worst;
}

}  // namespace ad::testing
