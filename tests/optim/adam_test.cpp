// Adam: known answers over three steps (including TF's epsilon placement and the beta powers),
// TF's defaults, slot and beta-power variables, and one pair of beta powers per optimizer.
#include "optim/adam.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

// The textbook form (Kingma & Ba, Algorithm 1 with TF's ε̂): bias-corrected step size, moments
// as exponential averages.
struct AdamReference {
  double lr, beta1, beta2, epsilon;
  std::vector<double> w = kInitialW;
  std::vector<double> m = std::vector<double>(kInitialW.size(), 0.0);
  std::vector<double> v = std::vector<double>(kInitialW.size(), 0.0);
  int t = 0;
  void step() {
    ++t;
    const double alpha = lr * std::sqrt(1.0 - std::pow(beta2, t)) / (1.0 - std::pow(beta1, t));
    for (std::size_t i = 0; i < w.size(); ++i) {
      m[i] = beta1 * m[i] + (1.0 - beta1) * kGrad[i];
      v[i] = beta2 * v[i] + (1.0 - beta2) * kGrad[i] * kGrad[i];
      w[i] -= alpha * m[i] / (std::sqrt(v[i]) + epsilon);
    }
  }
};

void check_three_steps(ad::optim::AdamOptions options, AdamReference ref, ad::DType dtype,
                       double tolerance) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::Adam adam(std::move(options));
  auto train = adam.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto beta1_power = variable_named(g, "beta1_power");
  run_steps(
      s, train, 3, [&] { ref.step(); },
      [&] {
        check_close(to_doubles(s.value(w)), ref.w, tolerance, "w");
        check_close(to_doubles(s.value(adam.get_slot(w, "m"))), ref.m, tolerance, "m");
        check_close(to_doubles(s.value(adam.get_slot(w, "v"))), ref.v, tolerance, "v");
        check_close(to_doubles(s.value(beta1_power)), {std::pow(ref.beta1, ref.t + 1)}, tolerance,
                    "beta1_power");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(adam_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  // A large epsilon makes its placement (added to √v, not to v) visible.
  check_three_steps({.learning_rate = 0.1, .beta1 = 0.8, .beta2 = 0.95, .epsilon = 1e-2},
                    {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .epsilon = 1e-2}, ad::DType::Float64,
                    1e-12);
}

BOOST_AUTO_TEST_CASE(defaults_are_tf1s) {
  check_three_steps({}, {.lr = 0.001, .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-8},
                    ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps({.learning_rate = 0.1, .beta1 = 0.8, .beta2 = 0.95, .epsilon = 1e-2},
                    {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .epsilon = 1e-2}, ad::DType::Float32,
                    1e-5);
}

BOOST_AUTO_TEST_CASE(slots_and_beta_powers_are_named_as_in_tf1) {
  ad::Graph g;
  auto w = make_variable(g, "dense/kernel", kInitialW, kShape);
  auto b = make_variable(g, "dense/bias", {0.0, 0.0}, {2});
  ad::optim::Adam adam;
  auto train = adam.apply_gradients(
      {{make_constant(g, kGrad, kShape), w}, {make_constant(g, {1.0, 2.0}, {2}), b}});
  BOOST_TEST(adam.get_slot(w, "m").name() == "dense/kernel/Adam");
  BOOST_TEST(adam.get_slot(w, "v").name() == "dense/kernel/Adam_1");
  BOOST_TEST(adam.get_slot(b, "m").name() == "dense/bias/Adam");
  BOOST_TEST((adam.get_slot_names() == std::vector<std::string>{"m", "v"}));
  std::vector<std::string> globals;
  for (const auto& v : ad::global_variables(g)) globals.push_back(v.name());
  const std::vector<std::string> expected = {
      "dense/kernel",      "dense/bias",          "beta1_power",     "beta2_power",
      "dense/kernel/Adam", "dense/kernel/Adam_1", "dense/bias/Adam", "dense/bias/Adam_1"};
  BOOST_TEST(globals == expected, boost::test_tools::per_element());
  BOOST_TEST(ad::trainable_variables(g).size() == 2U);
  BOOST_TEST(adam.variables().size() == 6U);
  BOOST_TEST(g.find_node("Adam/update_dense/kernel/ApplyAdam") >= 0);
  BOOST_TEST(train.name() == "Adam");
}

BOOST_AUTO_TEST_CASE(each_optimizer_has_its_own_beta_powers_shared_by_its_variables) {
  ad::Graph g;
  auto a = make_variable(g, "a", {1.0}, {1});
  auto b = make_variable(g, "b", {1.0}, {1});
  ad::optim::Adam first({.beta1 = 0.5});
  ad::optim::Adam second({.beta1 = 0.25});
  auto train_a = first.apply_gradients({{make_constant(g, {1.0}, {1}), a}});
  auto train_b = second.apply_gradients({{make_constant(g, {1.0}, {1}), b}});
  // A second call of the same optimizer reuses its slots and beta powers.
  auto train_a_again = first.apply_gradients({{make_constant(g, {1.0}, {1}), a}});
  BOOST_TEST(g.find_variable("beta1_power") >= 0);
  BOOST_TEST(g.find_variable("beta1_power_1") >= 0);
  BOOST_TEST(g.find_variable("beta1_power_2") < 0);
  BOOST_TEST(first.get_slot(a, "m").name() == "a/Adam");
  BOOST_TEST(train_a_again.name() == "Adam_2");
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train_a});
  s.run({train_a_again});
  s.run({train_b});
  const auto p1 = variable_named(g, "beta1_power");
  const auto p2 = variable_named(g, "beta1_power_1");
  BOOST_TEST(s.value(p1).flat(0) == 0.125);   // 0.5^3: two steps of the first optimizer
  BOOST_TEST(s.value(p2).flat(0) == 0.0625);  // 0.25^2: one step of the second
}

BOOST_AUTO_TEST_CASE(beta_powers_take_the_dtype_of_the_first_variable_by_name) {
  ad::Graph g;
  auto z = make_variable(g, "z", {1.0}, {1}, ad::DType::Float64);
  auto a = make_variable(g, "a", {1.0}, {1}, ad::DType::Float32);
  ad::optim::Adam adam({.learning_rate = 0.1});
  auto train = adam.apply_gradients(
      {{make_constant(g, {1.0}, {1}), z}, {make_constant(g, {1.0}, {1}, ad::DType::Float32), a}});
  BOOST_TEST(variable_named(g, "beta1_power").dtype() == ad::DType::Float32);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  // First step: α = η·√(1 − β2)/(1 − β1), m = 0.1, v = 0.001: w = 1 − α·0.1/(√0.001 + 1e-8).
  const double alpha = 0.1 * std::sqrt(1.0 - 0.999) / (1.0 - 0.9);
  const double expected = 1.0 - alpha * 0.1 / (std::sqrt(0.001) + 1e-8);
  BOOST_TEST(s.value(z).flat(0) == expected, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(s.value(a).flat(0) == expected, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_SUITE_END()
