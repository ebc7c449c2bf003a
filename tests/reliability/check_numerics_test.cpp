// ad::check_numerics: pass-through of finite values without a copy, errors naming the node, the
// message and what was found, its gradient check, and its dtype rule.
#include "autodiff/check_numerics.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

BOOST_AUTO_TEST_SUITE(check_numerics_test)

BOOST_AUTO_TEST_CASE(finite_values_pass_through_unchanged_and_uncopied) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto y = ad::check_numerics(x, "x is bad");
  BOOST_TEST(y.shape() == x.shape());
  ad::Session s(g);
  const auto value = ad::testing::random_array({4, 3}, 1);
  std::vector<float> floats(value.data<double>().begin(), value.data<double>().end());
  const auto fed = ad::Array::from<float>(floats, {4, 3});
  const auto out = s.eval(y, {{x, fed}});
  BOOST_TEST(out.data<float>().data() == fed.data<float>().data());  // an alias, not a copy
  BOOST_TEST(out.data<float>() == fed.data<float>(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nan_inf_and_both_are_reported_with_the_message_and_node) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1}, "x");
  auto y = ad::check_numerics(x * 2.0, "activations of fc1", "check_fc1");
  ad::Session s(g);
  // Large enough to take the parallel scan, with the bad value near the end.
  std::vector<double> values(200001, 0.5);
  values[199999] = kNaN;
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(y, {{x, ad::Array::from<double>(values, {200001})}}), ad::InvalidArgumentError,
      (MessageHas{{"CheckNumerics 'check_fc1'", "activations of fc1", "had NaN values"}}));
  values[199999] = -kInf;
  BOOST_CHECK_EXCEPTION((void)s.eval(y, {{x, ad::Array::from<double>(values, {200001})}}),
                        ad::InvalidArgumentError, (MessageHas{{"had Inf values", "[200001]"}}));
  values[0] = kNaN;
  BOOST_CHECK_EXCEPTION((void)s.eval(y, {{x, ad::Array::from<double>(values, {200001})}}),
                        ad::InvalidArgumentError, (MessageHas{{"had Inf and NaN values"}}));
  // The session stays usable after the failure.
  const auto ok = s.eval(y, {{x, ad::Array::from<double>({1.0, 2.0}, {2})}});
  BOOST_TEST(ok.data<double>()[1] == 4.0);
}

BOOST_AUTO_TEST_CASE(overflow_to_inf_in_float32_is_caught) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  auto y = ad::check_numerics(ad::exp(x), "exp overflowed");
  ad::Session s(g);
  BOOST_CHECK_NO_THROW((void)s.eval(y, {{x, ad::Array::from<float>({1.f, 80.f}, {2})}}));
  BOOST_CHECK_EXCEPTION((void)s.eval(y, {{x, ad::Array::from<float>({1.f, 100.f}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"exp overflowed", "Inf"}}));
}

BOOST_AUTO_TEST_CASE(gradient_is_the_identity_on_finite_values) {
  ad::testing::check_gradient(
      [](const std::vector<ad::Tensor>& in) {
        return ad::check_numerics(ad::tanh(in[0]) * in[0], "checked");
      },
      {ad::testing::random_array({3, 4}, 7)}, 1e-6, /*second_order=*/true);
}

BOOST_AUTO_TEST_CASE(gradient_checks_the_incoming_gradient_with_tf_message) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto y = ad::check_numerics(x, "layer output");
  // d/dy of sqrt(y) at y = 0 is Inf: the forward value is finite, the gradient is not.
  auto loss = ad::reduce_sum(ad::sqrt(y));
  auto grad = ad::gradients(loss, {x})[0];
  ad::Session s(g);
  const auto feed = ad::Array::from<double>({0.0, 4.0}, {2});
  BOOST_TEST(s.eval(loss, {{x, feed}}).item<double>() == 2.0);
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(grad, {{x, feed}}), ad::InvalidArgumentError,
      (MessageHas{{"Not a number (NaN) or infinity (Inf) values detected in gradient. layer output",
                   "had Inf values"}}));
}

BOOST_AUTO_TEST_CASE(non_floating_inputs_are_rejected_when_recorded) {
  ad::Graph g;
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  BOOST_CHECK_EXCEPTION((void)ad::check_numerics(labels, "m"), ad::ValueError,
                        (MessageHas{{"check_numerics", "'labels:0'", "int64[?]", "Float32"}}));
  BOOST_CHECK_EXCEPTION((void)ad::check_numerics(ad::Tensor(), "m"), ad::ValueError,
                        (MessageHas{{"empty Tensor"}}));
}

BOOST_AUTO_TEST_SUITE_END()
