// Finite-difference gradient checking.
#include "autodiff/gradient_check.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"

namespace ad {

GradientCheckResult compute_gradient_error(Session& session, const std::vector<Tensor>& xs,
                                           const std::vector<Array>& x_values, const Tensor& y,
                                           const FeedDict& feeds,
                                           const GradientCheckOptions& options) {
  if (xs.size() != x_values.size()) {
    throw ValueError(
        str("compute_gradient_error: ", xs.size(), " xs but ", x_values.size(), " values"));
  }
  if (y.dtype() != DType::Float64) {
    throw ValueError(str("compute_gradient_error: y '", y.name(), "' is ", y.dtype(),
                         "; checks run in float64"));
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].dtype() != DType::Float64 || x_values[i].dtype() != DType::Float64) {
      throw ValueError(str("compute_gradient_error: x '", xs[i].name(), "' must be float64"));
    }
  }
  FeedDict all = feeds;
  for (std::size_t i = 0; i < xs.size(); ++i) all.emplace_back(xs[i], x_values[i]);
  const Array y0 = session.eval(y, all);

  // The random projection r, fed through a placeholder shaped like y.
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> r(static_cast<std::size_t>(y0.size()));
  for (auto& v : r) v = normal(rng);
  const Array r_value = Array::from(std::span<const double>(r), y0.shape());
  Graph& graph = y.graph();
  const Tensor r_ph = placeholder(graph, DType::Float64, y.shape(), "gradient_check_projection");
  std::vector<GradTarget> targets(xs.begin(), xs.end());
  const auto grads = gradients({y}, targets, {r_ph});

  FeedDict with_r = all;
  with_r.emplace_back(r_ph, r_value);
  std::vector<Tensor> fetch;
  for (const auto& g : grads) {
    if (g) fetch.push_back(g);
  }
  const auto symbolic_values = session.run(fetch, with_r);

  auto projected = [&](const FeedDict& f) {
    const Array value = session.eval(y, f);
    const auto v = value.data<double>();
    double s = 0;
    for (std::size_t k = 0; k < v.size(); ++k) s += v[k] * r[k];
    return s;
  };

  GradientCheckResult result;
  double worst_error = -1;
  std::size_t fetched = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Array* sym = grads[i] ? &symbolic_values[fetched++] : nullptr;
    const auto n = static_cast<std::size_t>(x_values[i].size());
    for (std::size_t k = 0; k < n; ++k) {
      FeedDict plus = all;
      FeedDict minus = all;
      Array xp = x_values[i].clone();
      Array xm = x_values[i].clone();
      xp.mutable_data<double>()[k] += options.delta;
      xm.mutable_data<double>()[k] -= options.delta;
      plus[feeds.size() + i].second = xp;
      minus[feeds.size() + i].second = xm;
      const double numeric = (projected(plus) - projected(minus)) / (2 * options.delta);
      const double symbolic = sym ? sym->data<double>()[k] : 0.0;
      const double abs_error = std::abs(symbolic - numeric);
      const double error =
          std::isnan(abs_error) ? INFINITY : abs_error / std::max(1.0, std::abs(numeric));
      result.max_abs_error = std::max(result.max_abs_error, abs_error);
      ++result.elements_checked;
      if (error > worst_error) {
        worst_error = error;
        result.max_error = error;
        result.worst =
            str("'", xs[i].name(), "' element ", k, ": symbolic ", symbolic, ", numeric ", numeric);
      }
    }
  }
  return result;
}

}  // namespace ad
