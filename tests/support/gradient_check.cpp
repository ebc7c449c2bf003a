// Gradient-check helpers for the test suites.
#include "tests/support/gradient_check.h"

#include <random>

#include "autodiff/gradients.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"

namespace ad::testing {

Array random_array(const Shape& shape, std::uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(shape.num_elements()));
  for (auto& x : v) x = dist(rng);
  return Array::from(v, shape);
}

Array random_normal(const Shape& shape, std::uint64_t seed, double mean, double stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<double> v(static_cast<std::size_t>(shape.num_elements()));
  for (auto& x : v) x = dist(rng);
  return Array::from(v, shape);
}

void check_gradient(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                    const std::vector<Array>& values, double tolerance, bool second_order) {
  Graph graph;
  std::vector<Tensor> xs;
  for (std::size_t i = 0; i < values.size(); ++i) {
    xs.push_back(placeholder(graph, DType::Float64, values[i].shape(), "x" + std::to_string(i)));
  }
  const Tensor y = f(xs);
  Session session(graph);
  const auto first = compute_gradient_error(session, xs, values, y);
  BOOST_TEST(first.max_error <= tolerance, "first-order gradient error " << first.max_error << " > "
                                                                         << tolerance << " at "
                                                                         << first.worst);
  if (!second_order) return;
  // Second order: differentiate z = sum_k v_k * dy/dx_k (v random, fed) with respect to xs.
  std::vector<GradTarget> targets(xs.begin(), xs.end());
  const auto grads = gradients(y, targets);
  std::vector<Tensor> terms;
  FeedDict feeds;
  std::uint64_t seed = 99;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!grads[i]) continue;
    const Tensor v = placeholder(graph, DType::Float64, values[i].shape(), "v" + std::to_string(i));
    feeds.emplace_back(v, random_array(values[i].shape(), seed++));
    terms.push_back(mul(grads[i], v));
  }
  BOOST_REQUIRE(!terms.empty());
  // The projection inside compute_gradient_error reduces each term; sum them elementwise by shape
  // through a scalar: z = sum over terms of (term projected), built as one tensor per term.
  for (const auto& term : terms) {
    const auto second = compute_gradient_error(session, xs, values, term, feeds);
    BOOST_TEST(second.max_error <= tolerance, "second-order gradient error "
                                                  << second.max_error << " > " << tolerance
                                                  << " at " << second.worst);
  }
}

}  // namespace ad::testing
