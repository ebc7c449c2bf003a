// Momentum: known answers over three steps, plain and Nesterov, the slot's name and value, and
// elements with a zero gradient still moving (dense update).
#include "optim/momentum.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

void check_three_steps(bool nesterov, ad::DType dtype, double tolerance) {
  const double lr = 0.2;
  const double mu = 0.7;
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::Momentum opt({.learning_rate = lr, .momentum = mu, .use_nesterov = nesterov});
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  std::vector<double> accum(w_ref.size(), 0.0);
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          accum[i] = mu * accum[i] + kGrad[i];
          w_ref[i] -= nesterov ? lr * kGrad[i] + lr * mu * accum[i] : lr * accum[i];
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "momentum"))), accum, tolerance, "momentum");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(momentum_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps(false, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(three_nesterov_steps_match_the_update_rule_in_float64) {
  check_three_steps(true, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps(false, ad::DType::Float32, 1e-6);
  check_three_steps(true, ad::DType::Float32, 1e-6);
}

BOOST_AUTO_TEST_CASE(a_zero_gradient_keeps_moving_the_variable_by_its_momentum) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0}, {1});
  auto grad = ad::placeholder(g, ad::DType::Float64, {1}, "grad");
  ad::optim::Momentum opt({.learning_rate = 0.5, .momentum = 0.9});
  auto train = opt.apply_gradients({{grad, w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train}, {{grad, ad::Array::from<double>({2.0}, {1})}});  // a = 2, w = 1 - 1 = 0
  s.run({train}, {{grad, ad::Array::from<double>({0.0}, {1})}});  // a = 1.8, w = -0.9
  BOOST_TEST(s.value(w).flat(0) == -0.9, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(s.value(opt.get_slot(w, "momentum")).flat(0) == 1.8,
             boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(the_slot_is_named_after_the_variable_and_starts_at_zero) {
  ad::Graph g;
  auto w = make_variable(g, "layer/w", kInitialW, kShape);
  ad::optim::Momentum opt;
  (void)opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  const auto slot = opt.get_slot(w, "momentum");
  BOOST_TEST(slot.name() == "layer/w/Momentum");
  BOOST_TEST(!slot.trainable());
  BOOST_TEST(slot.shape() == kShape);
  BOOST_TEST(opt.get_slot_names() == std::vector<std::string>{"momentum"});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  check_close(to_doubles(s.value(slot)), std::vector<double>(6, 0.0), 0.0, "initial momentum");
}

BOOST_AUTO_TEST_SUITE_END()
