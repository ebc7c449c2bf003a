// layer_normalization, group_normalization and instance_normalization: variable names and shapes,
// defaults (gamma ones, beta zeros: each example's output has mean 0 and variance
// v / (v + epsilon) over the normalized axes), unknown batch, gradients of the layer's variables
// against finite differences, and errors naming the layer and the shapes.
#include "layers/normalization.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

std::vector<std::string> variable_names(const ad::Graph& g) {
  std::vector<std::string> names;
  for (const auto& v : ad::global_variables(g)) names.push_back(v.name() + v.shape().to_string());
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(normalization_test)

BOOST_AUTO_TEST_CASE(variables_follow_keras_shapes_and_tf1_names) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {-1, 6, 4, 4}, "x");
  (void)L::layer_normalization(x);
  (void)L::layer_normalization(x, {.axis = {1, 3}, .center = false});
  (void)L::group_normalization(x, {.groups = 3, .axis = 1, .name = "gn"});
  (void)L::instance_normalization(x, {.axis = 1, .scale = false});
  const std::vector<std::string> want{"layer_normalization/gamma[4]",
                                      "layer_normalization/beta[4]",
                                      "layer_normalization_1/gamma[6, 4]",
                                      "gn/gamma[6]",
                                      "gn/beta[6]",
                                      "instance_normalization/beta[6]"};
  BOOST_TEST(variable_names(g) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_parameters_give_zero_mean_and_shrunk_unit_variance) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float64, {-1, 4, 3, 3}, "x");
  const auto y = L::group_normalization(x, {.groups = 2, .axis = 1, .epsilon = 1e-3});
  BOOST_TEST(y.shape() == x.shape());
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const ad::Array value = random_array({3, 4, 3, 3}, 1, -3.0, 5.0);
  const ad::Array out = s.eval(y, {{x, value}});
  // Per example and group (2 channels of 9 elements): closed forms.
  for (std::int64_t n = 0; n < 3; ++n) {
    for (std::int64_t grp = 0; grp < 2; ++grp) {
      double mean = 0;
      double out_mean = 0;
      for (std::int64_t i = 0; i < 18; ++i) {
        mean += value.flat(n * 36 + grp * 18 + i) / 18;
        out_mean += out.flat(n * 36 + grp * 18 + i) / 18;
      }
      double variance = 0;
      double out_variance = 0;
      for (std::int64_t i = 0; i < 18; ++i) {
        variance += std::pow(value.flat(n * 36 + grp * 18 + i) - mean, 2) / 18;
        out_variance += std::pow(out.flat(n * 36 + grp * 18 + i) - out_mean, 2) / 18;
      }
      BOOST_TEST(std::abs(out_mean) < 1e-12);
      BOOST_TEST(out_variance == variance / (variance + 1e-3), boost::test_tools::tolerance(1e-12));
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_reach_gamma_and_beta_and_match_finite_differences) {
  for (const bool fused : {true, false}) {
    ad::Graph g;
    const auto x = ad::placeholder(g, ad::DType::Float64, {2, 3, 4}, "x");
    const auto gamma_value = random_array({4}, 2, 0.5, 1.5);
    const auto beta_value = random_array({4}, 3, -1.0, 1.0);
    const auto y =
        L::layer_normalization(x, {.beta_initializer = ad::initializers::constant(beta_value),
                                   .gamma_initializer = ad::initializers::constant(gamma_value),
                                   .fused = fused});
    const auto loss = ad::reduce_sum(ad::square(y) * ad::constant(g, random_array({2, 3, 4}, 4)));
    ad::Session s(g);
    s.run({ad::global_variables_initializer(g)});
    const auto vars = ad::trainable_variables(g);
    BOOST_REQUIRE_EQUAL(vars.size(), 2u);
    const auto value = random_array({2, 3, 4}, 5, -2.0, 2.0);
    const auto err = ad::compute_gradient_error(s, {x}, {value}, loss);
    BOOST_TEST(err.max_error <= 1e-6, err.worst);
    const auto grads = ad::gradients({loss}, {vars[0], vars[1]});
    BOOST_TEST(static_cast<bool>(grads[0]));
    BOOST_TEST(static_cast<bool>(grads[1]));
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer_and_the_shapes) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {2, 6, 5}, "x");
  BOOST_CHECK_EXCEPTION((void)L::group_normalization(x, {.groups = 4, .axis = 1}), ad::ValueError,
                        (MessageHas{{"group_normalization 'group_normalization'", "6 channels",
                                     "4 groups", "[2, 6, 5]"}}));
  BOOST_CHECK_EXCEPTION((void)L::layer_normalization(x, {.axis = 3}), ad::ValueError,
                        (MessageHas{{"layer_normalization", "axis 3", "[2, 6, 5]"}}));
  BOOST_CHECK_EXCEPTION((void)L::layer_normalization(x, {.axis = {1, -2}}), ad::ValueError,
                        (MessageHas{{"layer_normalization", "repeated"}}));
  const auto i = ad::placeholder(g, ad::DType::Int64, {2, 6}, "i");
  BOOST_CHECK_EXCEPTION((void)L::instance_normalization(i), ad::ValueError,
                        (MessageHas{{"instance_normalization", "int64", "float32 or float64"}}));
  const auto unknown = ad::placeholder(g, ad::DType::Float32, {2, -1, 6}, "u");
  BOOST_CHECK_EXCEPTION((void)L::group_normalization(unknown, {.groups = 2}), ad::ValueError,
                        (MessageHas{{"group_normalization", "unknown size on axis 1"}}));
}

BOOST_AUTO_TEST_SUITE_END()
