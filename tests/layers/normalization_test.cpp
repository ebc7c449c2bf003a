// layer_normalization, group_normalization and instance_normalization: variable names and shapes,
// defaults (gamma ones, beta zeros: each example's output has mean 0 and variance
// v / (v + epsilon) over the normalized axes), unknown batch, gradients of the layer's variables
// against finite differences, and errors naming the layer and the shapes.
#include "layers/normalization.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

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

// The class forms: built once, called on several inputs that share gamma and beta. Each row of x
// normalized by hand, (x - mean) / sqrt(biased variance + epsilon), then times gamma (set to 2 to
// show both calls read the same variable) plus beta (0.5).
BOOST_AUTO_TEST_CASE(class_forms_share_their_variables_across_calls) {
  ad::Graph g;
  const auto a = ad::placeholder(g, ad::DType::Float64, {-1, 4}, "a");
  const auto b = ad::placeholder(g, ad::DType::Float64, {-1, 3, 4}, "b");
  L::LayerNormalization ln({.epsilon = 1e-2});
  BOOST_TEST(!ln.built());
  const auto ya = ln(a);
  const auto yb = ln(b);
  L::LayerNormalization other;
  (void)other(a);
  L::GroupNormalization gn({.groups = 2, .name = "gn"});
  const auto ga = gn(a);
  const auto gb = gn(b);
  L::InstanceNormalization in({.center = false});
  const auto ia = in(b);
  const auto ib = in(ad::placeholder(g, ad::DType::Float64, {-1, 5, 4}, "c"));
  BOOST_TEST(ln.built());
  BOOST_TEST(ln.scope_name() == "layer_normalization");
  BOOST_TEST(other.scope_name() == "layer_normalization_1");
  BOOST_TEST(gn.scope_name() == "gn");
  BOOST_TEST(ln.variables().size() == 2U);
  BOOST_TEST(in.variables().size() == 1U);
  BOOST_TEST(!in.beta());
  const std::vector<std::string> want{"layer_normalization/gamma[4]",
                                      "layer_normalization/beta[4]",
                                      "layer_normalization_1/gamma[4]",
                                      "layer_normalization_1/beta[4]",
                                      "gn/gamma[4]",
                                      "gn/beta[4]",
                                      "instance_normalization/gamma[4]"};
  BOOST_TEST(variable_names(g) == want, boost::test_tools::per_element());
  BOOST_CHECK_EXCEPTION((void)ln(ad::placeholder(g, ad::DType::Float64, {-1, 5}, "d")),
                        ad::ValueError, (MessageHas{{"layer_normalization/gamma", "[5]", "[4]"}}));

  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto two = ad::Array::full(ad::DType::Float64, {4}, 2.0);
  const auto half = ad::Array::full(ad::DType::Float64, {4}, 0.5);
  s.run({ln.gamma().assign(ad::constant(g, two)), ln.beta().assign(ad::constant(g, half)),
         gn.gamma().assign(ad::constant(g, two)), gn.beta().assign(ad::constant(g, half))});
  const auto av = random_array({2, 4}, 11, -2.0, 3.0);
  const auto bv = random_array({2, 3, 4}, 12, -2.0, 3.0);
  const auto out = s.run({ya, yb, ga, gb, ia}, {{a, av}, {b, bv}});
  // Normalizes `count` elements of `x` from `start` with stride `stride` and compares with `y`.
  const auto check = [](const ad::Array& x, const ad::Array& y, std::int64_t start,
                        std::int64_t count, std::int64_t stride, double eps, double gamma,
                        double beta) {
    double mean = 0;
    for (std::int64_t i = 0; i < count; ++i) mean += x.flat(start + i * stride) / double(count);
    double var = 0;
    for (std::int64_t i = 0; i < count; ++i) {
      const double d = x.flat(start + i * stride) - mean;
      var += d * d / double(count);
    }
    for (std::int64_t i = 0; i < count; ++i) {
      const double expected =
          (x.flat(start + i * stride) - mean) / std::sqrt(var + eps) * gamma + beta;
      BOOST_TEST(y.flat(start + i * stride) == expected, boost::test_tools::tolerance(1e-12));
    }
  };
  for (std::int64_t row = 0; row < 2; ++row) check(av, out[0], row * 4, 4, 1, 1e-2, 2, 0.5);
  for (std::int64_t row = 0; row < 6; ++row) check(bv, out[1], row * 4, 4, 1, 1e-2, 2, 0.5);
  // Group norm, 2 groups of 2 channels: for a, pairs of a row; for b, 3 positions x 2 channels.
  for (std::int64_t row = 0; row < 2; ++row) {
    for (std::int64_t grp = 0; grp < 2; ++grp)
      check(av, out[2], row * 4 + grp * 2, 2, 1, 1e-3, 2, 0.5);
  }
  for (std::int64_t n = 0; n < 2; ++n) {
    for (std::int64_t c = 0; c < 4; ++c) {
      // Instance norm of b: channel c of example n over its 3 positions (stride 4).
      check(bv, out[4], n * 12 + c, 3, 4, 1e-3, 1, 0);
    }
  }
  // Group norm of b, groups mixing positions: checked through its sum, which is 0.5 per element.
  double sum = 0;
  for (std::int64_t i = 0; i < out[3].size(); ++i) sum += out[3].flat(i);
  BOOST_TEST(sum == 0.5 * 24, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(ib.shape() == ad::Shape({-1, 5, 4}));
}

BOOST_AUTO_TEST_SUITE_END()
