// Learning-rate schedules against their closed forms at chosen steps, their dtypes, their use as
// an optimizer's learning rate with the global step, and their argument checks.
#include "optim/schedules.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <numbers>

#include "autodiff/autodiff.h"
#include "optim/gradient_descent.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

// Evaluates `schedule` with the Int64 step placeholder fed each of `steps`.
std::vector<double> at_steps(ad::Session& s, const ad::Tensor& schedule, const ad::Tensor& step,
                             const std::vector<std::int64_t>& steps) {
  std::vector<double> out;
  for (const auto k : steps) {
    out.push_back(s.eval(schedule, {{step, ad::Array::scalar<std::int64_t>(k)}}).flat(0));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schedules_test)

BOOST_AUTO_TEST_CASE(exponential_decay_matches_its_closed_form) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  auto smooth = ad::optim::exponential_decay(0.1, step, 10, 0.5);
  auto stairs = ad::optim::exponential_decay(0.1, step, 10, 0.5, /*staircase=*/true);
  ad::Session s(g);
  const std::vector<std::int64_t> steps = {0, 5, 10, 19, 25, 100};
  std::vector<double> expected_smooth;
  std::vector<double> expected_stairs;
  for (const auto k : steps) {
    expected_smooth.push_back(0.1 * std::pow(0.5, static_cast<double>(k) / 10.0));
    expected_stairs.push_back(0.1 * std::pow(0.5, std::floor(static_cast<double>(k) / 10.0)));
  }
  check_close(at_steps(s, smooth, step, steps), expected_smooth, 1e-15, "smooth");
  check_close(at_steps(s, stairs, step, steps), expected_stairs, 1e-15, "staircase");
  BOOST_TEST(smooth.dtype() == ad::DType::Float64);
  BOOST_TEST(smooth.name() == "ExponentialDecay:0");
}

BOOST_AUTO_TEST_CASE(piecewise_constant_takes_the_value_of_the_interval) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  auto lr = ad::optim::piecewise_constant(step, {100, 200}, {1.0, 0.5, 0.1});
  ad::Session s(g);
  // x <= 100 -> 1.0; 100 < x <= 200 -> 0.5; x > 200 -> 0.1.
  check_close(at_steps(s, lr, step, {0, 100, 101, 200, 201, 5000}), {1.0, 1.0, 0.5, 0.5, 0.1, 0.1},
              0.0, "values");
  auto as_float = ad::optim::piecewise_constant(step, {3}, {0.1, 0.2}, ad::DType::Float32);
  BOOST_TEST(as_float.dtype() == ad::DType::Float32);
  BOOST_TEST(s.eval(as_float, {{step, ad::Array::scalar<std::int64_t>(4)}}).data<float>()[0] ==
             0.2F);
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto on_float = ad::optim::piecewise_constant(x, {0.5}, {1.0, 2.0});
  BOOST_TEST(s.eval(on_float, {{x, ad::Array::scalar(0.5)}}).flat(0) == 1.0);
  BOOST_TEST(s.eval(on_float, {{x, ad::Array::scalar(0.5000001)}}).flat(0) == 2.0);
}

BOOST_AUTO_TEST_CASE(cosine_decay_matches_its_closed_form_and_stays_flat_after_decay_steps) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  const double alpha = 0.1;
  auto lr = ad::optim::cosine_decay(0.2, step, 100, alpha);
  ad::Session s(g);
  const std::vector<std::int64_t> steps = {0, 25, 50, 99, 100, 150};
  std::vector<double> expected;
  for (const auto k : steps) {
    const double t = std::min<double>(static_cast<double>(k), 100.0) / 100.0;
    expected.push_back(0.2 * ((1 - alpha) * 0.5 * (1 + std::cos(std::numbers::pi * t)) + alpha));
  }
  check_close(at_steps(s, lr, step, steps), expected, 1e-15, "values");
  BOOST_TEST(expected[2] == 0.2 * (0.45 + 0.1), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(expected[5] == 0.2 * alpha, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(a_tensor_learning_rate_sets_the_dtype) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  auto base = ad::placeholder(g, ad::DType::Float32, {}, "base");
  auto lr = ad::optim::exponential_decay(base, step, 2, 0.5);
  BOOST_TEST(lr.dtype() == ad::DType::Float32);
  ad::Session s(g);
  const auto out =
      s.eval(lr, {{step, ad::Array::scalar<std::int64_t>(4)}, {base, ad::Array::scalar(0.8F)}});
  BOOST_TEST(out.data<float>()[0] == 0.2F);
}

BOOST_AUTO_TEST_CASE(an_optimizer_follows_the_schedule_on_the_global_step) {
  ad::Graph g;
  auto global_step = ad::optim::get_or_create_global_step(g);
  auto w = make_variable(g, "w", {0.0}, {1});
  auto lr = ad::optim::exponential_decay(1.0, global_step.value(), 1, 0.5);
  ad::optim::GradientDescent sgd({.learning_rate = lr});
  auto train = sgd.apply_gradients({{make_constant(g, {1.0}, {1}), w}}, global_step);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  for (int i = 0; i < 4; ++i) s.run({train});
  // Steps 0..3 use learning rates 1, 1/2, 1/4, 1/8 (the step is read before its increment).
  BOOST_TEST(s.value(w).flat(0) == -(1.0 + 0.5 + 0.25 + 0.125));
  BOOST_TEST(s.value(global_step).data<std::int64_t>()[0] == 4);
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_value_errors) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  BOOST_CHECK_EXCEPTION((void)ad::optim::exponential_decay(0.1, step, 0, 0.5), ad::ValueError,
                        (MessageHas{{"exponential_decay", "decay_steps must be positive", "0"}}));
  BOOST_CHECK_EXCEPTION((void)ad::optim::cosine_decay(0.1, step, -5), ad::ValueError,
                        (MessageHas{{"cosine_decay", "decay_steps must be positive", "-5"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::optim::piecewise_constant(step, {1, 2}, {1.0, 2.0}), ad::ValueError,
      (MessageHas{{"piecewise_constant", "one more entry", "2 values", "2 boundaries"}}));
  BOOST_CHECK_EXCEPTION((void)ad::optim::piecewise_constant(step, {2, 1}, {1.0, 2.0, 3.0}),
                        ad::ValueError, (MessageHas{{"strictly increasing"}}));
  auto vector_step = ad::placeholder(g, ad::DType::Int64, {2}, "steps");
  BOOST_CHECK_EXCEPTION((void)ad::optim::exponential_decay(0.1, vector_step, 10, 0.5),
                        ad::ValueError,
                        (MessageHas{{"exponential_decay", "'steps:0'", "numeric scalar", "[2]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
