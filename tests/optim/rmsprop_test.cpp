// RMSProp: known answers over three steps (plain, with momentum, centered), TF1's initial rms of
// 1 and its slot names in creation order.
#include "optim/rmsprop.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

void check_three_steps(ad::optim::RMSPropOptions options, ad::DType dtype, double tolerance) {
  const double lr = options.learning_rate.number();
  const double decay = options.decay.number();
  const double momentum = options.momentum.number();
  const double epsilon = options.epsilon.number();
  const bool centered = options.centered;
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::RMSProp opt(std::move(options));
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  std::vector<double> ms(w_ref.size(), 1.0);  // TF1 starts the mean square at 1
  std::vector<double> mg(w_ref.size(), 0.0);
  std::vector<double> mom(w_ref.size(), 0.0);
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          const double gi = kGrad[i];
          ms[i] = decay * ms[i] + (1.0 - decay) * gi * gi;
          mg[i] = decay * mg[i] + (1.0 - decay) * gi;
          const double denominator = centered ? ms[i] - mg[i] * mg[i] : ms[i];
          mom[i] = momentum * mom[i] + lr * gi / std::sqrt(denominator + epsilon);
          w_ref[i] -= mom[i];
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "rms"))), ms, tolerance, "rms");
        check_close(to_doubles(s.value(opt.get_slot(w, "momentum"))), mom, tolerance, "momentum");
        if (centered) {
          check_close(to_doubles(s.value(opt.get_slot(w, "mg"))), mg, tolerance, "mg");
        }
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rmsprop_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps({.learning_rate = 0.1, .decay = 0.8, .epsilon = 1e-3}, ad::DType::Float64,
                    1e-12);
}

BOOST_AUTO_TEST_CASE(three_steps_with_momentum_match_the_update_rule_in_float64) {
  check_three_steps({.learning_rate = 0.1, .decay = 0.8, .momentum = 0.6, .epsilon = 1e-3},
                    ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(three_centered_steps_match_the_update_rule_in_float64) {
  check_three_steps(
      {.learning_rate = 0.1, .decay = 0.8, .momentum = 0.6, .epsilon = 1e-3, .centered = true},
      ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(tf1_defaults_follow_the_update_rule) {
  check_three_steps({.learning_rate = 0.01}, ad::DType::Float64, 1e-12);
  const ad::optim::RMSPropOptions defaults;
  BOOST_TEST(defaults.decay.number() == 0.9);
  BOOST_TEST(defaults.momentum.number() == 0.0);
  BOOST_TEST(defaults.epsilon.number() == 1e-10);
  BOOST_TEST(!defaults.centered);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps(
      {.learning_rate = 0.1, .decay = 0.8, .momentum = 0.6, .epsilon = 1e-3, .centered = true},
      ad::DType::Float32, 1e-5);
}

BOOST_AUTO_TEST_CASE(slots_are_named_in_tf1_creation_order) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  auto v = make_variable(g, "v", kInitialW, kShape);
  ad::optim::RMSProp plain;
  ad::optim::RMSProp centered({.centered = true, .name = "Centered"});
  (void)plain.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  (void)centered.apply_gradients({{make_constant(g, kGrad, kShape), v}});
  BOOST_TEST(plain.get_slot(w, "rms").name() == "w/RMSProp");
  BOOST_TEST(plain.get_slot(w, "momentum").name() == "w/RMSProp_1");
  BOOST_TEST(centered.get_slot(v, "rms").name() == "v/Centered");
  BOOST_TEST(centered.get_slot(v, "mg").name() == "v/Centered_1");
  BOOST_TEST(centered.get_slot(v, "momentum").name() == "v/Centered_2");
  BOOST_TEST((plain.get_slot_names() == std::vector<std::string>{"momentum", "rms"}));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  check_close(to_doubles(s.value(plain.get_slot(w, "rms"))), std::vector<double>(6, 1.0), 0.0,
              "initial rms");
}

BOOST_AUTO_TEST_SUITE_END()
