// Finite-difference gradient checking.
#include "autodiff/gradient_check.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"

namespace ad {
namespace {

// What the checker perturbs: a fed tensor or a variable, its value, and how it is named.
struct CheckedInput {
  GradTarget target;
  std::string name;
  Array value;
};

// r·y with input `i` set to `x` (every other input at its value).
using Projected = std::function<double(std::size_t i, const Array& x)>;

void require_float64(std::string_view what, const std::string& name, DType dtype) {
  if (dtype != DType::Float64) {
    throw ValueError(str("compute_gradient_error: ", what, " '", name, "' is ", dtype,
                         "; checks run in float64"));
  }
}

// The random projection r (normal, seeded) shaped like `y0`.
std::vector<double> projection(const Array& y0, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> r(static_cast<std::size_t>(y0.size()));
  for (auto& v : r) v = normal(rng);
  return r;
}

double dot(const Array& y, const std::vector<double>& r) {
  const auto v = y.data<double>();
  double s = 0;
  for (std::size_t k = 0; k < v.size(); ++k) s += v[k] * r[k];
  return s;
}

// d(r·y)/d(input) from gradients() (run with `feeds`) against central differences of `projected`,
// element by element: the one engine behind both overloads.
GradientCheckResult compare(Session& session, const std::vector<CheckedInput>& inputs,
                            const Tensor& y, const Array& y0, const std::vector<double>& r,
                            const FeedDict& feeds, const Projected& projected,
                            const GradientCheckOptions& options) {
  const Tensor r_ph =
      placeholder(y.graph(), DType::Float64, y.shape(), "gradient_check_projection");
  std::vector<GradTarget> targets;
  for (const auto& input : inputs) targets.push_back(input.target);
  const auto grads = gradients({y}, targets, {r_ph});
  FeedDict with_r = feeds;
  with_r.emplace_back(r_ph, Array::from(std::span<const double>(r), y0.shape()));
  std::vector<Tensor> fetch;
  for (const auto& g : grads) {
    if (g) fetch.push_back(g);
  }
  const auto symbolic_values = session.run(fetch, with_r);
  GradientCheckResult result;
  double worst_error = -1;
  std::size_t fetched = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Array* sym = grads[i] ? &symbolic_values[fetched++] : nullptr;
    const Array& x = inputs[i].value;
    for (std::size_t k = 0; k < static_cast<std::size_t>(x.size()); ++k) {
      Array xp = x.clone();
      Array xm = x.clone();
      xp.mutable_data<double>()[k] += options.delta;
      xm.mutable_data<double>()[k] -= options.delta;
      const double numeric = (projected(i, xp) - projected(i, xm)) / (2 * options.delta);
      const double symbolic = sym ? sym->data<double>()[k] : 0.0;
      const double abs_error = std::abs(symbolic - numeric);
      const double error =
          std::isnan(abs_error) ? INFINITY : abs_error / std::max(1.0, std::abs(numeric));
      result.max_abs_error = std::max(result.max_abs_error, abs_error);
      ++result.elements_checked;
      if (error > worst_error) {
        worst_error = error;
        result.max_error = error;
        result.worst = str("'", inputs[i].name, "' element ", k, ": symbolic ", symbolic,
                           ", numeric ", numeric);
      }
    }
  }
  return result;
}

}  // namespace

GradientCheckResult compute_gradient_error(Session& session, const std::vector<Tensor>& xs,
                                           const std::vector<Array>& x_values, const Tensor& y,
                                           const FeedDict& feeds,
                                           const GradientCheckOptions& options) {
  if (xs.size() != x_values.size()) {
    throw ValueError(
        str("compute_gradient_error: ", xs.size(), " xs but ", x_values.size(), " values"));
  }
  require_float64("y", y.name(), y.dtype());
  std::vector<CheckedInput> inputs;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    require_float64("x", xs[i].name(), xs[i].dtype());
    require_float64("the value of x", xs[i].name(), x_values[i].dtype());
    inputs.push_back({xs[i], xs[i].name(), x_values[i]});
  }
  FeedDict all = feeds;
  for (std::size_t i = 0; i < xs.size(); ++i) all.emplace_back(xs[i], x_values[i]);
  const Array y0 = session.eval(y, all);
  const auto r = projection(y0, options.seed);
  const Projected projected = [&](std::size_t i, const Array& x) {
    FeedDict moved = all;
    moved[feeds.size() + i].second = x;
    return dot(session.eval(y, moved), r);
  };
  return compare(session, inputs, y, y0, r, all, projected, options);
}

GradientCheckResult compute_gradient_error(Session& session, const std::vector<Variable>& vars,
                                           const Tensor& y, const FeedDict& feeds,
                                           const GradientCheckOptions& options) {
  require_float64("y", y.name(), y.dtype());
  std::vector<CheckedInput> inputs;
  for (const Variable& var : vars) {
    require_float64("variable", var.name(), var.dtype());
    inputs.push_back({var, var.name(), session.value(var).clone()});
  }
  const Array y0 = session.eval(y, feeds);
  const auto r = projection(y0, options.seed);
  const Projected projected = [&](std::size_t i, const Array& x) {
    session.set_value(vars[i], x);
    const double value = dot(session.eval(y, feeds), r);
    session.set_value(vars[i], inputs[i].value);
    return value;
  };
  return compare(session, inputs, y, y0, r, feeds, projected, options);
}

}  // namespace ad
