// Adagrad: known answers over three steps, the accumulator slot and its initial value, and the
// check on initial_accumulator_value.
#include "optim/adagrad.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

void check_three_steps(double lr, double initial, ad::DType dtype, double tolerance) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::Adagrad opt({.learning_rate = lr, .initial_accumulator_value = initial});
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  std::vector<double> accum(w_ref.size(), initial);
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          accum[i] += kGrad[i] * kGrad[i];
          w_ref[i] -= lr * kGrad[i] / std::sqrt(accum[i]);
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "accumulator"))), accum, tolerance,
                    "accumulator");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(adagrad_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps(0.3, 0.1, ad::DType::Float64, 1e-12);
  check_three_steps(0.05, 2.5, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps(0.3, 0.1, ad::DType::Float32, 1e-6);
}

BOOST_AUTO_TEST_CASE(the_accumulator_is_named_after_the_variable_and_starts_at_0_1) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::Adagrad opt;
  (void)opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  BOOST_TEST(opt.get_slot(w, "accumulator").name() == "w/Adagrad");
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  check_close(to_doubles(s.value(opt.get_slot(w, "accumulator"))), std::vector<double>(6, 0.1), 0.0,
              "initial accumulator");
}

BOOST_AUTO_TEST_CASE(rejects_a_non_positive_initial_accumulator) {
  BOOST_CHECK_EXCEPTION(ad::optim::Adagrad({.initial_accumulator_value = 0.0}), ad::ValueError,
                        (MessageHas{{"Adagrad", "initial_accumulator_value must be positive"}}));
}

BOOST_AUTO_TEST_SUITE_END()
