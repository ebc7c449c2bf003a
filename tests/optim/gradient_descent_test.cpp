// GradientDescent: known answers over three steps (float64 exact, float32 to rounding), the
// default learning rate, and run-time hyper-parameters.
#include "optim/gradient_descent.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

void check_three_steps(ad::DType dtype, double tolerance) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::GradientDescent sgd({.learning_rate = 0.3});
  auto train = sgd.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) w_ref[i] -= 0.3 * kGrad[i];
      },
      [&] { check_close(to_doubles(s.value(w)), w_ref, tolerance, "w"); });
  BOOST_TEST(s.value(w).dtype() == dtype);
  BOOST_TEST(sgd.get_slot_names().empty());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gradient_descent_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps(ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_variables_follow_the_float64_rule_to_rounding) {
  check_three_steps(ad::DType::Float32, 1e-6);
}

BOOST_AUTO_TEST_CASE(default_learning_rate_is_0_01) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0}, {1});
  ad::optim::GradientDescent sgd;
  auto train = sgd.apply_gradients({{make_constant(g, {2.0}, {1}), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  BOOST_TEST(s.value(w).flat(0) == 1.0 - 0.01 * 2.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(sgd.name() == "GradientDescent");
}

BOOST_AUTO_TEST_CASE(a_fed_learning_rate_is_cast_to_the_variable_dtype) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  auto lr = ad::placeholder(g, ad::DType::Float32, {}, "lr");
  ad::optim::GradientDescent sgd({.learning_rate = lr});
  auto train = sgd.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  for (const float rate : {0.5F, 0.25F}) {
    s.run({train}, {{lr, ad::Array::scalar(rate)}});
    for (std::size_t i = 0; i < w_ref.size(); ++i) w_ref[i] -= static_cast<double>(rate) * kGrad[i];
    check_close(to_doubles(s.value(w)), w_ref, 1e-12, "w");
  }
}

BOOST_AUTO_TEST_SUITE_END()
