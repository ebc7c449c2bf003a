// Activations and norms: values and first derivatives against PyTorch fixtures (made by
// tools/make_torch_activation_fixtures.py with Debian's python3-torch), gradients of the first and
// second order against float64 central differences, and errors.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

const std::map<std::string, ad::Array>& fixtures() {
  static const std::map<std::string, ad::Array> all = [] {
    std::map<std::string, ad::Array> out;
    std::ifstream in(std::string(GRADTAPE_SOURCE_DIR) + "/tests/fixtures/torch_activations.txt");
    BOOST_REQUIRE_MESSAGE(in, "missing tests/fixtures/torch_activations.txt");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name;
      int rank = 0;
      fields >> name >> rank;
      ad::Shape shape;
      for (int d = 0; d < rank; ++d) {
        std::int64_t dim = 0;
        fields >> dim;
        shape.push_back(dim);
      }
      std::vector<double> values;
      double v = 0;
      while (fields >> v) values.push_back(v);
      out.emplace(name, ad::Array::from(values, shape));
    }
    return out;
  }();
  return all;
}

const ad::Array& fx(const std::string& name) {
  const auto it = fixtures().find(name);
  BOOST_REQUIRE_MESSAGE(it != fixtures().end(), "fixture " << name << " missing");
  return it->second;
}

// Largest |got - want| / max(1, |want|) over the elements; shapes must agree.
double max_error(const ad::Array& got, const ad::Array& want) {
  BOOST_REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < want.size(); ++i) {
    const double w = want.flat(i);
    worst = std::max(worst, std::abs(got.flat(i) - w) / std::max(1.0, std::abs(w)));
  }
  return worst;
}

using Fn = std::function<ad::Tensor(const ad::Tensor&)>;

const std::vector<std::pair<std::string, Fn>>& activations() {
  static const std::vector<std::pair<std::string, Fn>> all = {
      {"leaky_relu", [](const ad::Tensor& x) { return ad::leaky_relu(x); }},
      {"elu", [](const ad::Tensor& x) { return ad::elu(x); }},
      {"selu", [](const ad::Tensor& x) { return ad::selu(x); }},
      {"gelu", [](const ad::Tensor& x) { return ad::gelu(x); }},
      {"gelu_tanh", [](const ad::Tensor& x) { return ad::gelu(x, /*approximate=*/true); }},
      {"swish", [](const ad::Tensor& x) { return ad::swish(x); }},
      {"softsign", [](const ad::Tensor& x) { return ad::softsign(x); }},
  };
  return all;
}

// f(fixture `input`) in `dtype`, and its first derivative (the gradient of the sum).
std::pair<ad::Array, ad::Array> value_and_derivative(const Fn& f, const ad::Array& input,
                                                     ad::DType dtype) {
  ad::Graph g;
  auto x = ad::placeholder(g, dtype, input.shape(), "x");
  auto y = f(x);
  auto dx = ad::gradients({ad::reduce_sum(y)}, {x})[0];
  ad::Session s(g);
  auto out = s.run({y, dx}, {{x, input.astype(dtype)}});
  return {out[0].astype(ad::DType::Float64), out[1].astype(ad::DType::Float64)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(activations_test)

BOOST_AUTO_TEST_CASE(values_and_derivatives_match_pytorch_in_float64_and_float32) {
  for (const auto& [name, f] : activations()) {
    BOOST_TEST_CONTEXT(name) {
      const auto [y64, unused64] = value_and_derivative(f, fx("x"), ad::DType::Float64);
      BOOST_TEST(max_error(y64, fx(name + ".y")) <= 1e-14);
      const auto [y32, unused32] = value_and_derivative(f, fx("x"), ad::DType::Float32);
      BOOST_TEST(max_error(y32, fx(name + ".y")) <= 1e-6);
      const auto [v64, dx64] = value_and_derivative(f, fx("xg"), ad::DType::Float64);
      BOOST_TEST(max_error(dx64, fx(name + ".dx")) <= 1e-14);
      const auto [v32, dx32] = value_and_derivative(f, fx("xg"), ad::DType::Float32);
      BOOST_TEST(max_error(dx32, fx(name + ".dx")) <= 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_to_second_order) {
  std::uint64_t seed = 40;
  for (const auto& [name, f] : activations()) {
    BOOST_TEST_CONTEXT(name) {
      // Away from 0, where leaky_relu, elu and selu switch formulas.
      check_gradient([&](const std::vector<ad::Tensor>& x) { return f(x[0]); },
                     {random_array({3, 4}, ++seed, 0.2, 3)}, 1e-6, true);
      check_gradient([&](const std::vector<ad::Tensor>& x) { return f(x[0]); },
                     {random_array({3, 4}, ++seed, -3, -0.2)}, 1e-6, true);
    }
  }
}

BOOST_AUTO_TEST_CASE(leaky_relu_takes_alpha_and_silu_is_swish) {
  ad::Graph g;
  auto x = ad::constant(g, ad::Array::from<double>({-2, 3}, {2}));
  ad::Session s(g);
  const auto out = s.run({ad::leaky_relu(x, 0.5), ad::leaky_relu(x, 2.0), ad::silu(x)});
  BOOST_TEST(out[0].flat(0) == -1.0);
  BOOST_TEST(out[1].flat(0) == -4.0);  // alpha > 1 is TF's x > 0 ? x : alpha x, not a maximum
  BOOST_TEST(out[1].flat(1) == 3.0);
  BOOST_TEST(out[2].flat(1) == 3.0 / (1.0 + std::exp(-3.0)));
}

BOOST_AUTO_TEST_CASE(activations_reject_integer_inputs) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Int64, {2}, "labels");
  BOOST_CHECK_EXCEPTION((void)ad::gelu(x), ad::ValueError, MessageHas({"Gelu", "'labels:0'"}));
  BOOST_CHECK_EXCEPTION((void)ad::leaky_relu(x), ad::ValueError, MessageHas({"LeakyRelu"}));
}

BOOST_AUTO_TEST_CASE(norms_and_l2_normalize_match_pytorch) {
  ad::Graph g;
  auto m = ad::placeholder(g, ad::DType::Float64, {3, 5}, "m");
  using ad::NormOrder;
  const std::vector<std::pair<std::string, ad::Tensor>> cases = {
      {"l2_normalize.axis1", ad::nn::l2_normalize(m, 1)},
      {"l2_normalize.axis0", ad::nn::l2_normalize(m, 0)},
      {"norm.euclidean.all", ad::norm(m)},
      {"norm.euclidean.axis1", ad::norm(m, NormOrder::kEuclidean, {-1})},
      {"norm.1.axis0", ad::norm(m, NormOrder::kOne, {0})},
      {"norm.inf.axis1.keepdims", ad::norm(m, NormOrder::kInfinity, {1}, true)},
      {"norm.1.matrix", ad::norm(m, NormOrder::kOne, {0, 1})},
      {"norm.inf.matrix", ad::norm(m, NormOrder::kInfinity, {0, 1})},
      {"norm.euclidean.axis1.dx",
       ad::gradients({ad::reduce_sum(ad::norm(m, NormOrder::kEuclidean, {1}))}, {m})[0]},
      {"l2_normalize.axis1.dx",
       ad::gradients({ad::reduce_sum(ad::nn::l2_normalize(m, 1) * ad::constant(g, fx("w")))},
                     {m})[0]},
  };
  ad::Session s(g);
  for (const auto& [name, t] : cases) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(max_error(s.run({t}, {{m, fx("m")}})[0], fx(name)) <= 1e-14);
    }
  }
}

BOOST_AUTO_TEST_CASE(norm_gradients_match_finite_differences) {
  using ad::NormOrder;
  const auto m = random_array({3, 4}, 70, -2, 2);
  check_gradient([](const auto& x) { return ad::norm(x[0]); }, {m}, 1e-6, true);
  check_gradient([](const auto& x) { return ad::norm(x[0], NormOrder::kOne, {1}); }, {m}, 1e-6,
                 true);
  check_gradient([](const auto& x) { return ad::norm(x[0], NormOrder::kInfinity, {0}); }, {m}, 1e-6,
                 true);
  check_gradient(
      [](const auto& x) {
        return ad::norm(x[0], NormOrder::kOne, {0, 1});
      },
      {m}, 1e-6, true);
  check_gradient([](const auto& x) { return ad::nn::l2_normalize(x[0], 1); }, {m}, 1e-6, true);
  check_gradient([](const auto& x) { return ad::nn::l2_normalize(x[0], {}); }, {m}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(norm_rejects_three_axes_and_integer_input) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2, 2, 2}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::norm(x, ad::NormOrder::kOne, {0, 1, 2}), ad::ValueError,
                        MessageHas({"norm 'norm'", "3 axes"}));
  auto i = ad::placeholder(g, ad::DType::Int64, {2}, "i");
  BOOST_CHECK_EXCEPTION((void)ad::norm(i), ad::ValueError, MessageHas({"norm", "int64"}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::l2_normalize(i, 0), ad::ValueError,
                        MessageHas({"l2_normalize", "int64"}));
}

BOOST_AUTO_TEST_SUITE_END()
