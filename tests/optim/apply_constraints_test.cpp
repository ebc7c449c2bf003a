// Constraints applied by the optimizers (Optimizer::apply_gradients): after one train op a
// variable pushed out of its set is back inside, the constraint sees the updated value, slots keep
// their unconstrained values, and variables without a constraint are not touched by this.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <memory>

#include "autodiff/autodiff.h"
#include "optim/optim.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

// One gradient-descent step with learning rate 1: w - g.
std::vector<double> sgd_step(const std::vector<double>& w, const std::vector<double>& g) {
  std::vector<double> out(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) out[i] = w[i] - g[i];
  return out;
}

// Keras's norm constraints on a row-major [rows, cols] matrix with axis 0 (per column): each
// column c of norm n becomes c * target(n) / (1e-7 + n).
template <class Target>
std::vector<double> per_column(const std::vector<double>& w, int rows, int cols, Target target) {
  std::vector<double> out(w.size());
  for (int c = 0; c < cols; ++c) {
    double sum = 0.0;
    for (int r = 0; r < rows; ++r) sum += w[r * cols + c] * w[r * cols + c];
    const double n = std::sqrt(sum);
    for (int r = 0; r < rows; ++r) out[r * cols + c] = w[r * cols + c] * target(n) / (1e-7 + n);
  }
  return out;
}

// Builds w with `constraint`, applies one SGD step (learning rate 1) with gradient `grad`, and
// returns w's value afterwards.
std::vector<double> one_constrained_step(const std::vector<double>& w0,
                                         const std::vector<double>& grad, const ad::Shape& shape,
                                         ad::Constraint constraint) {
  ad::Graph g;
  auto w = make_variable(g, "w", w0, shape, ad::DType::Float64, std::move(constraint));
  ad::optim::GradientDescent sgd({.learning_rate = 1.0});
  auto train = sgd.apply_gradients({{make_constant(g, grad, shape), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  return to_doubles(s.value(w));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(apply_constraints_test)

BOOST_AUTO_TEST_CASE(non_neg_brings_negative_entries_back_to_zero) {
  const std::vector<double> w0 = {0.5, -0.1, 0.2, 1.0};
  const std::vector<double> grad = {1.0, 0.0, -0.3, 0.4};
  const auto w = one_constrained_step(w0, grad, {4}, ad::constraints::non_neg());
  // Updated: [-0.5, -0.1, 0.5, 0.6]; negative entries become 0.
  check_close(w, {0.0, 0.0, 0.5, 0.6}, 1e-15, "w");
}

BOOST_AUTO_TEST_CASE(max_norm_bounds_each_column_after_the_update) {
  const std::vector<double> w0 = {1.0, 0.5, -1.0, 0.5, 0.0, 0.25};
  const std::vector<double> grad = {-2.0, 0.1, 2.0, 0.0, -1.0, 0.05};
  const auto w = one_constrained_step(w0, grad, {3, 2}, ad::constraints::max_norm(2.0, {0}));
  const auto expected =
      per_column(sgd_step(w0, grad), 3, 2, [](double n) { return std::clamp(n, 0.0, 2.0); });
  check_close(w, expected, 1e-14, "w");
  const double first_column = std::sqrt(w[0] * w[0] + w[2] * w[2] + w[4] * w[4]);
  BOOST_TEST(first_column <= 2.0);
  BOOST_TEST(first_column > 1.99);  // the update pushed it to norm √19, far outside
}

BOOST_AUTO_TEST_CASE(unit_norm_rescales_to_norm_one_after_the_update) {
  const std::vector<double> w0 = {0.6, 0.8, 0.0};
  const std::vector<double> grad = {-1.0, 0.5, -2.0};
  const auto w = one_constrained_step(w0, grad, {3}, ad::constraints::unit_norm({0}));
  const auto expected = per_column(sgd_step(w0, grad), 3, 1, [](double) { return 1.0; });
  check_close(w, expected, 1e-14, "w");
  BOOST_TEST(std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]) == 1.0,
             boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(min_max_norm_moves_each_column_rate_of_the_way_into_the_range) {
  // Columns after the update: norm 0.5 (below 1), 1.5 (inside), 5 (above 2).
  const std::vector<double> w0 = {0.3, 0.9, 3.0, 0.4, 1.2, 4.0};
  const std::vector<double> grad(6, 0.0);
  const double rate = 0.5;
  const auto w =
      one_constrained_step(w0, grad, {2, 3}, ad::constraints::min_max_norm(1.0, 2.0, rate, {0}));
  const auto expected = per_column(
      w0, 2, 3, [&](double n) { return rate * std::clamp(n, 1.0, 2.0) + (1.0 - rate) * n; });
  check_close(w, expected, 1e-14, "w");
  // Norms 0.75, 1.5, 3.5 (up to Keras's epsilon).
  BOOST_TEST(std::hypot(w[0], w[3]) == 0.75, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(std::hypot(w[1], w[4]) == 1.5, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(std::hypot(w[2], w[5]) == 3.5, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(the_constraint_sees_the_updated_value) {
  // Doubling: if it saw the value before the update, the update would be lost (2·w0).
  const std::vector<double> w0 = {1.0, -2.0};
  const std::vector<double> grad = {0.5, 0.25};
  const auto w = one_constrained_step(w0, grad, {2}, [](const ad::Tensor& x) { return x * 2.0; });
  check_close(w, {2.0 * (1.0 - 0.5), 2.0 * (-2.0 - 0.25)}, 1e-15, "w");
}

BOOST_AUTO_TEST_CASE(variables_without_a_constraint_are_untouched_by_this_machinery) {
  ad::Graph g;
  const std::vector<double> w0 = {0.5, -0.1};
  const std::vector<double> grad = {1.0, 0.0};
  auto a = make_variable(g, "a", w0, {2}, ad::DType::Float64, ad::constraints::non_neg());
  auto b = make_variable(g, "b", w0, {2});
  ad::optim::GradientDescent sgd({.learning_rate = 1.0});
  auto train =
      sgd.apply_gradients({{make_constant(g, grad, {2}), a}, {make_constant(g, grad, {2}), b}});
  BOOST_TEST(g.find_node("GradientDescent/update_a/Assign") >= 0);
  for (int i = 0; i < g.num_nodes(); ++i) {
    const auto& node = g.node(i);
    if (node.name.starts_with("GradientDescent/update_b/")) {
      BOOST_TEST(node.name == "GradientDescent/update_b/ApplyGradientDescent");
    }
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  check_close(to_doubles(s.value(a)), {0.0, 0.0}, 0.0, "a");
  check_close(to_doubles(s.value(b)), {-0.5, -0.1}, 0.0, "b");
}

BOOST_AUTO_TEST_CASE(slots_keep_their_unconstrained_values) {
  ad::Graph g;
  auto w = make_variable(g, "w", {0.1, 0.2}, {2}, ad::DType::Float64, ad::constraints::non_neg());
  ad::optim::Momentum opt({.learning_rate = 1.0, .momentum = 0.5});
  auto train = opt.apply_gradients({{make_constant(g, {1.0, -1.0}, {2}), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});  // a = [1, -1]; w = [0.1 - 1, 0.2 + 1] -> [0, 1.2]
  s.run({train});  // a = [1.5, -1.5]; w = [0 - 1.5, 1.2 + 1.5] -> [0, 2.7]
  check_close(to_doubles(s.value(w)), {0.0, 2.7}, 1e-15, "w");
  check_close(to_doubles(s.value(opt.get_slot(w, "momentum"))), {1.5, -1.5}, 0.0, "momentum");
}

BOOST_AUTO_TEST_CASE(every_optimizer_applies_the_constraint_after_each_step) {
  std::vector<std::unique_ptr<ad::optim::Optimizer>> optimizers;
  optimizers.push_back(std::make_unique<ad::optim::GradientDescent>(
      ad::optim::GradientDescentOptions{.learning_rate = 0.5}));
  optimizers.push_back(std::make_unique<ad::optim::Momentum>(
      ad::optim::MomentumOptions{.learning_rate = 0.5, .momentum = 0.9}));
  optimizers.push_back(
      std::make_unique<ad::optim::Adam>(ad::optim::AdamOptions{.learning_rate = 0.5}));
  optimizers.push_back(
      std::make_unique<ad::optim::RMSProp>(ad::optim::RMSPropOptions{.learning_rate = 0.5}));
  optimizers.push_back(
      std::make_unique<ad::optim::Adagrad>(ad::optim::AdagradOptions{.learning_rate = 0.5}));
  for (auto& opt : optimizers) {
    BOOST_TEST_CONTEXT(opt->name()) {
      ad::Graph g;
      auto w = make_variable(g, "w", {0.3, 0.1, 2.0}, {3}, ad::DType::Float64,
                             ad::constraints::non_neg());
      auto train = opt->apply_gradients({{make_constant(g, {1.0, 2.0, -1.0}, {3}), w}});
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      for (int step = 0; step < 4; ++step) {
        s.run({train});
        const auto value = to_doubles(s.value(w));
        BOOST_TEST(value[0] == 0.0);
        BOOST_TEST(value[1] == 0.0);
        BOOST_TEST(value[2] > 2.0);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_constraint_returning_the_wrong_shape_is_a_value_error) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0, 2.0}, {2}, ad::DType::Float64,
                         [](const ad::Tensor& x) { return ad::reduce_sum(x); });
  ad::optim::GradientDescent sgd;
  BOOST_CHECK_EXCEPTION((void)sgd.apply_gradients({{make_constant(g, {1.0, 1.0}, {2}), w}}),
                        ad::ValueError,
                        (MessageHas{{"constraint of 'w'", "float64[]", "float64[2] variable"}}));
}

BOOST_AUTO_TEST_SUITE_END()
