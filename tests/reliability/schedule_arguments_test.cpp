// NaN where a schedule needs an ordered number: a NaN boundary or value of piecewise_constant is a
// ValueError when the graph is built (its doc promises one; std::is_sorted cannot see a NaN), and a
// NaN step is an InvalidArgumentError when it runs (lower_bound would silently answer values[0]).
#include <boost/test/unit_test.hpp>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "optim/schedules.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

BOOST_AUTO_TEST_SUITE(schedule_arguments_test)

BOOST_AUTO_TEST_CASE(a_nan_boundary_or_value_is_a_value_error) {
  ad::Graph g;
  auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  const std::vector<std::vector<double>> bad_boundaries{
      {kNaN}, {kNaN, 1.0}, {1.0, kNaN}, {1.0, kNaN, 3.0}, {0.0, 2.0, kNaN}};
  for (const auto& boundaries : bad_boundaries) {
    const std::vector<double> values(boundaries.size() + 1, 0.1);
    BOOST_CHECK_EXCEPTION((void)ad::optim::piecewise_constant(step, boundaries, values),
                          ad::ValueError,
                          (MessageHas{{"piecewise_constant", "boundaries[", "nan"}}));
  }
  BOOST_CHECK_EXCEPTION((void)ad::optim::piecewise_constant(step, {1.0, 2.0}, {0.1, kNaN, 0.3}),
                        ad::ValueError, (MessageHas{{"piecewise_constant", "values[1] is nan"}}));
  // Decreasing or repeated boundaries, infinite ones included, are still refused; increasing
  // infinite ends are ordinary numbers.
  for (const auto& boundaries :
       std::vector<std::vector<double>>{{2.0, 1.0}, {1.0, 1.0}, {kInf, 1.0}, {-kInf, -kInf}}) {
    BOOST_CHECK_EXCEPTION((void)ad::optim::piecewise_constant(step, boundaries, {1, 2, 3}),
                          ad::ValueError, (MessageHas{{"strictly increasing"}}));
  }
  auto lr = ad::optim::piecewise_constant(step, {-kInf, 10.0, kInf}, {1.0, 2.0, 3.0, 4.0});
  ad::Session s(g);
  BOOST_TEST(s.eval(lr, {{step, ad::Array::scalar<std::int64_t>(10)}}).item<double>() == 2.0);
  BOOST_TEST(s.eval(lr, {{step, ad::Array::scalar<std::int64_t>(11)}}).item<double>() == 3.0);
}

BOOST_AUTO_TEST_CASE(a_nan_step_is_an_invalid_argument_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto lr = ad::optim::piecewise_constant(x, {1.0, 2.0}, {0.1, 0.2, 0.3}, ad::DType::Float64, "lr");
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION((void)s.eval(lr, {{x, ad::Array::scalar(kNaN)}}), ad::InvalidArgumentError,
                        (MessageHas{{"'lr'", "x is nan"}}));
  // The session goes on, and the infinities fall in the outer intervals.
  BOOST_TEST(s.eval(lr, {{x, ad::Array::scalar(1.5)}}).item<double>() == 0.2);
  BOOST_TEST(s.eval(lr, {{x, ad::Array::scalar(-kInf)}}).item<double>() == 0.1);
  BOOST_TEST(s.eval(lr, {{x, ad::Array::scalar(kInf)}}).item<double>() == 0.3);
}

BOOST_AUTO_TEST_SUITE_END()
