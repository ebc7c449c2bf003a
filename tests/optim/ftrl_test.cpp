// Ftrl: known answers over three steps (plain; l1/l2/beta; l2 shrinkage; a general
// learning_rate_power), slot names and TF's argument checks.
#include "optim/ftrl.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

// FTRL-Proximal per coordinate (McMahan et al. 2013, Algorithm 1, with TF's generalised power
// and shrinkage): σ = (n'^(−p) − n^(−p))/η, z += ĝ − σ·w, then w is the closed-form minimiser.
void check_three_steps(const ad::optim::FtrlOptions& options, ad::DType dtype, double tolerance) {
  const double lr = options.learning_rate.number();
  const double p = options.learning_rate_power;
  const double l1 = options.l1_regularization_strength;
  const double l2 = options.l2_regularization_strength + options.beta / (2.0 * lr);
  const double shrinkage = options.l2_shrinkage_regularization_strength;
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::Ftrl opt(options);
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  std::vector<double> n(w_ref.size(), options.initial_accumulator_value);
  std::vector<double> z(w_ref.size(), 0.0);
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          const double gi = kGrad[i] + 2.0 * shrinkage * w_ref[i];
          const double n_new = n[i] + kGrad[i] * kGrad[i];
          const double sigma = (std::pow(n_new, -p) - std::pow(n[i], -p)) / lr;
          z[i] += gi - sigma * w_ref[i];
          w_ref[i] = std::abs(z[i]) <= l1
                         ? 0.0
                         : -(z[i] - std::copysign(l1, z[i])) / (std::pow(n_new, -p) / lr + 2 * l2);
          n[i] = n_new;
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "accum"))), n, tolerance, "accum");
        check_close(to_doubles(s.value(opt.get_slot(w, "linear"))), z, tolerance, "linear");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ftrl_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps({.learning_rate = 0.5}, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(regularized_steps_match_the_update_rule_in_float64) {
  check_three_steps({.learning_rate = 0.5,
                     .initial_accumulator_value = 0.3,
                     .l1_regularization_strength = 0.2,
                     .l2_regularization_strength = 0.1,
                     .beta = 0.4},
                    ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(shrinkage_and_a_general_power_match_the_update_rule_in_float64) {
  check_three_steps({.learning_rate = 0.5,
                     .learning_rate_power = -0.7,
                     .l1_regularization_strength = 0.2,
                     .l2_regularization_strength = 0.1,
                     .l2_shrinkage_regularization_strength = 0.05},
                    ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps({.learning_rate = 0.5,
                     .l1_regularization_strength = 0.2,
                     .l2_regularization_strength = 0.1,
                     .beta = 0.4},
                    ad::DType::Float32, 1e-5);
}

BOOST_AUTO_TEST_CASE(slots_and_checks_follow_tf1) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::Ftrl opt;
  (void)opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  BOOST_TEST(opt.get_slot(w, "accum").name() == "w/Ftrl");
  BOOST_TEST(opt.get_slot(w, "linear").name() == "w/Ftrl_1");
  BOOST_CHECK_EXCEPTION(ad::optim::Ftrl({.learning_rate_power = 0.5}), ad::ValueError,
                        (MessageHas{{"Ftrl", "learning_rate_power must be negative or zero"}}));
  BOOST_CHECK_EXCEPTION(ad::optim::Ftrl({.l1_regularization_strength = -1.0}), ad::ValueError,
                        (MessageHas{{"Ftrl", "l1_regularization_strength", "positive or zero"}}));
  BOOST_CHECK_EXCEPTION(ad::optim::Ftrl({.initial_accumulator_value = -0.1}), ad::ValueError,
                        (MessageHas{{"Ftrl", "initial_accumulator_value"}}));
}

BOOST_AUTO_TEST_SUITE_END()
