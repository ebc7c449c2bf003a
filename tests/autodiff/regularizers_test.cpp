// Regularizers: values and gradients against closed forms and finite differences, and the loss a
// regularized variable adds to REGULARIZATION_LOSSES.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace reg = ad::regularizers;
using ad::testing::check_gradient;
using ad::testing::MessageHas;

namespace {

const std::vector<double> kW = {0.5, -1.25, 2.0, -0.75, 3.0, -0.1};

double sum_abs() {
  double s = 0;
  for (double w : kW) s += std::abs(w);
  return s;
}
double sum_squares() {
  double s = 0;
  for (double w : kW) s += w * w;
  return s;
}

// The regularizer's value and its gradient with respect to w = kW (shape [2, 3], float64); no
// gradient when the loss is a constant.
std::pair<double, std::vector<double>> evaluate(const ad::Regularizer& r) {
  ad::Graph g;
  const auto w = ad::constant(g, ad::Array::from<double>(kW, {2, 3}));
  const auto loss = r(w);
  BOOST_REQUIRE(loss.shape().rank() == 0);
  const auto grad = ad::gradients(loss, {w})[0];
  ad::Session s(g);
  if (!grad) return {s.eval(loss).item<double>(), {}};  // the loss does not depend on w
  const auto out = s.run({loss, grad});
  const auto g_data = out[1].data<double>();
  return {out[0].item<double>(), {g_data.begin(), g_data.end()}};
}

double sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

}  // namespace

BOOST_AUTO_TEST_SUITE(regularizers_test)

BOOST_AUTO_TEST_CASE(l1_is_scale_times_sum_of_absolute_values,
                     *boost::unit_test::tolerance(1e-14)) {
  const auto [value, grad] = evaluate(reg::l1(0.3));
  BOOST_TEST(value == 0.3 * sum_abs());
  for (std::size_t i = 0; i < kW.size(); ++i) BOOST_TEST(grad[i] == 0.3 * sign(kW[i]));
  BOOST_TEST(evaluate(reg::l1()).first == 0.01 * sum_abs());
}

BOOST_AUTO_TEST_CASE(l2_is_scale_times_sum_of_squares_without_a_half,
                     *boost::unit_test::tolerance(1e-14)) {
  const auto [value, grad] = evaluate(reg::l2(0.2));
  BOOST_TEST(value == 0.2 * sum_squares());
  for (std::size_t i = 0; i < kW.size(); ++i) BOOST_TEST(grad[i] == 2 * 0.2 * kW[i]);
  BOOST_TEST(evaluate(reg::l2()).first == 0.01 * sum_squares());
}

BOOST_AUTO_TEST_CASE(l1_l2_adds_both_terms, *boost::unit_test::tolerance(1e-14)) {
  const auto [value, grad] = evaluate(reg::l1_l2(0.1, 0.05));
  BOOST_TEST(value == 0.1 * sum_abs() + 0.05 * sum_squares());
  for (std::size_t i = 0; i < kW.size(); ++i) {
    BOOST_TEST(grad[i] == 0.1 * sign(kW[i]) + 2 * 0.05 * kW[i]);
  }
  BOOST_TEST(evaluate(reg::l1_l2()).first == 0.01 * sum_abs() + 0.01 * sum_squares());
  const auto [zero, no_grad] = evaluate(reg::l1_l2(0.0, 0.0));
  BOOST_TEST(zero == 0.0);
  BOOST_TEST(no_grad.empty());
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  // Values away from 0, where |w| has its kink.
  auto values = ad::testing::random_array({3, 4}, 5, 0.2, 1.0);
  auto data = values.mutable_data<double>();
  for (std::size_t i = 0; i < data.size(); i += 2) data[i] = -data[i];
  check_gradient([](const std::vector<ad::Tensor>& x) { return reg::l1(0.7)(x[0]); }, {values});
  check_gradient([](const std::vector<ad::Tensor>& x) { return reg::l2(0.7)(x[0]); }, {values},
                 1e-6, /*second_order=*/true);
  check_gradient([](const std::vector<ad::Tensor>& x) { return reg::l1_l2(0.3, 0.4)(x[0]); },
                 {values}, 1e-6, /*second_order=*/true);
}

BOOST_AUTO_TEST_CASE(a_regularized_variable_adds_one_loss_in_its_dtype) {
  ad::Graph g;
  const auto w =
      ad::get_variable(g, "dense/kernel",
                       {.shape = {2, 3},
                        .initializer = ad::initializers::constant(ad::Array::from<double>(kW, {6})),
                        .regularizer = reg::l2(0.5)});
  const auto losses = g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES);
  BOOST_REQUIRE(losses.size() == 1u);
  BOOST_TEST(losses[0].dtype() == ad::DType::Float32);
  BOOST_TEST(losses[0].name().starts_with("dense/kernel/Regularizer/"));
  const auto total = ad::get_regularization_loss(g);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.eval(total).item<float>() == 0.5 * sum_squares(),
             boost::test_tools::tolerance(1e-6));
  // The loss follows the variable's current value.
  s.set_value(w, ad::Array::full(ad::DType::Float32, {2, 3}, 1.0));
  BOOST_TEST(s.eval(total).item<float>() == 3.0f);
}

BOOST_AUTO_TEST_CASE(non_floating_values_are_rejected) {
  ad::Graph g;
  const auto ints = ad::constant(g, ad::Array::from<std::int64_t>({1, 2}, {2}), "ints");
  BOOST_CHECK_EXCEPTION((void)reg::l2()(ints), ad::ValueError,
                        (MessageHas{{"l2 regularizer", "'ints:0'", "int64"}}));
  BOOST_CHECK_EXCEPTION((void)reg::l1_l2()(ints), ad::ValueError, (MessageHas{{"l1_l2"}}));
}

BOOST_AUTO_TEST_SUITE_END()
