// ProximalGradientDescent and ProximalAdagrad: known answers over three steps with and without
// l1 (entries driven to exactly zero), slot names and argument checks.
#include "optim/proximal.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

// argmin_w 1/(2η')·(w − v)² + l1·|w| + l2/2·w², with v = w − η'·g: soft thresholding, then
// the l2 shrinkage.
double prox(double w, double g, double step, double l1, double l2) {
  const double v = w - step * g;
  const double shrunk = std::copysign(std::max(std::abs(v) - step * l1, 0.0), v);
  return shrunk / (1.0 + step * l2);
}

void check_three_proximal_adagrad_steps(ad::optim::ProximalAdagradOptions options, ad::DType dtype,
                                        double tolerance) {
  const double lr = options.learning_rate.number();
  const double l1 = options.l1_regularization_strength.number();
  const double l2 = options.l2_regularization_strength.number();
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  std::vector<double> acc(kInitialW.size(), options.initial_accumulator_value);
  ad::optim::ProximalAdagrad opt(std::move(options));
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          acc[i] += kGrad[i] * kGrad[i];
          w_ref[i] = prox(w_ref[i], kGrad[i], lr / std::sqrt(acc[i]), l1, l2);
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "accumulator"))), acc, tolerance,
                    "accumulator");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(proximal_test)

BOOST_AUTO_TEST_CASE(proximal_gradient_descent_matches_the_update_rule_in_float64) {
  for (const double l1 : {0.0, 0.4}) {
    BOOST_TEST_CONTEXT("l1 = " << l1) {
      const double lr = 0.5;
      const double l2 = 0.3;
      ad::Graph g;
      auto w = make_variable(g, "w", kInitialW, kShape);
      ad::optim::ProximalGradientDescent opt({.learning_rate = lr,
                                              .l1_regularization_strength = l1,
                                              .l2_regularization_strength = l2});
      auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      std::vector<double> w_ref = kInitialW;
      run_steps(
          s, train, 3,
          [&] {
            for (std::size_t i = 0; i < w_ref.size(); ++i) {
              w_ref[i] = prox(w_ref[i], kGrad[i], lr, l1, l2);
            }
          },
          [&] { check_close(to_doubles(s.value(w)), w_ref, 1e-12, "w"); });
    }
  }
}

BOOST_AUTO_TEST_CASE(l1_drives_small_weights_to_exactly_zero) {
  ad::Graph g;
  auto w = make_variable(g, "w", {0.1, -0.15, 0.5}, {3});
  ad::optim::ProximalGradientDescent opt({.learning_rate = 0.5, .l1_regularization_strength = 0.4});
  auto train = opt.apply_gradients({{make_constant(g, {0.0, 0.0, 0.0}, {3}), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  // Shrinkage by η·l1 = 0.2: |0.1| and |−0.15| fall below it.
  check_close(to_doubles(s.value(w)), {0.0, 0.0, 0.3}, 1e-15, "w");
}

BOOST_AUTO_TEST_CASE(proximal_adagrad_matches_the_update_rule_in_float64) {
  for (const double l1 : {0.0, 0.4}) {
    BOOST_TEST_CONTEXT("l1 = " << l1) {
      check_three_proximal_adagrad_steps({.learning_rate = 0.5,
                                          .initial_accumulator_value = 0.2,
                                          .l1_regularization_strength = l1,
                                          .l2_regularization_strength = 0.3},
                                         ad::DType::Float64, 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_proximal_adagrad_steps(
      {.learning_rate = 0.5, .l1_regularization_strength = 0.1, .l2_regularization_strength = 0.2},
      ad::DType::Float32, 1e-5);
}

BOOST_AUTO_TEST_CASE(names_and_checks_follow_tf1) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::ProximalAdagrad opt;
  (void)opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  BOOST_TEST(opt.get_slot(w, "accumulator").name() == "w/ProximalAdagrad");
  BOOST_TEST(g.find_node("ProximalAdagrad/update_w/ApplyProximalAdagrad") >= 0);
  BOOST_CHECK_EXCEPTION(ad::optim::ProximalAdagrad({.initial_accumulator_value = -1.0}),
                        ad::ValueError,
                        (MessageHas{{"ProximalAdagrad", "initial_accumulator_value", "positive"}}));
}

BOOST_AUTO_TEST_SUITE_END()
