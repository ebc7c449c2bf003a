// Adadelta: known answers over three steps, TF1's defaults and slot names.
#include "optim/adadelta.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/optim/optim_test_util.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

void check_three_steps(double lr, double rho, double epsilon, ad::optim::AdadeltaOptions options,
                       ad::DType dtype, double tolerance) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape, dtype);
  ad::optim::Adadelta opt(std::move(options));
  auto train = opt.apply_gradients({{make_constant(g, kGrad, kShape, dtype), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::vector<double> w_ref = kInitialW;
  std::vector<double> acc(w_ref.size(), 0.0);
  std::vector<double> acc_update(w_ref.size(), 0.0);
  run_steps(
      s, train, 3,
      [&] {
        for (std::size_t i = 0; i < w_ref.size(); ++i) {
          acc[i] = rho * acc[i] + (1 - rho) * kGrad[i] * kGrad[i];
          const double update =
              std::sqrt((acc_update[i] + epsilon) / (acc[i] + epsilon)) * kGrad[i];
          w_ref[i] -= lr * update;
          acc_update[i] = rho * acc_update[i] + (1 - rho) * update * update;
        }
      },
      [&] {
        check_close(to_doubles(s.value(w)), w_ref, tolerance, "w");
        check_close(to_doubles(s.value(opt.get_slot(w, "accum"))), acc, tolerance, "accum");
        check_close(to_doubles(s.value(opt.get_slot(w, "accum_update"))), acc_update, tolerance,
                    "accum_update");
      });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(adadelta_test)

BOOST_AUTO_TEST_CASE(three_steps_match_the_update_rule_in_float64) {
  check_three_steps(0.5, 0.8, 1e-3, {.learning_rate = 0.5, .rho = 0.8, .epsilon = 1e-3},
                    ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(defaults_are_tf1s) {
  check_three_steps(0.001, 0.95, 1e-8, {}, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_CASE(float32_steps_follow_the_float64_rule_to_rounding) {
  check_three_steps(0.5, 0.8, 1e-3, {.learning_rate = 0.5, .rho = 0.8, .epsilon = 1e-3},
                    ad::DType::Float32, 1e-5);
}

BOOST_AUTO_TEST_CASE(slots_are_named_as_in_tf1) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::Adadelta opt;
  (void)opt.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  BOOST_TEST(opt.get_slot(w, "accum").name() == "w/Adadelta");
  BOOST_TEST(opt.get_slot(w, "accum_update").name() == "w/Adadelta_1");
}

BOOST_AUTO_TEST_SUITE_END()
