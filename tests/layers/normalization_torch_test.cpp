// layer_normalization, group_normalization and instance_normalization against PyTorch
// (F.layer_norm, F.group_norm, F.instance_norm): fixtures made by
// tests/fixtures/make_torch_norm_fixtures.py with Debian's python3-torch, an independent
// implementation. Checked on both the fused and the composed gradient, in float64 (1e-9) and
// float32 (1e-5), relative to max(1, |reference|): outputs, first-order gradients of x, gamma and
// beta, and second order (the gradient of sum(dx * v) with respect to x and gamma).
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "autodiff/autodiff.h"
#include "layers/normalization.h"
#include "tests/support/bn_reference.h"

namespace L = ad::layers;
using ad::testing::to_doubles;

namespace {

struct Fixture {
  ad::Shape shape;
  std::vector<double> values;
  [[nodiscard]] ad::Array as(ad::DType dtype) const {
    return ad::Array::from(values, shape).astype(dtype);
  }
};

const std::map<std::string, Fixture>& fixtures() {
  static const std::map<std::string, Fixture> all = [] {
    std::map<std::string, Fixture> out;
    std::ifstream in(std::string(GRADTAPE_SOURCE_DIR) + "/tests/fixtures/torch_normalization.txt");
    BOOST_REQUIRE_MESSAGE(in, "missing tests/fixtures/torch_normalization.txt");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name;
      int rank = 0;
      fields >> name >> rank;
      Fixture f;
      for (int d = 0; d < rank; ++d) {
        std::int64_t dim = 0;
        fields >> dim;
        f.shape.push_back(dim);
      }
      double v = 0;
      while (fields >> v) f.values.push_back(v);
      BOOST_REQUIRE_EQUAL(static_cast<std::int64_t>(f.values.size()), f.shape.num_elements());
      out.emplace(name, std::move(f));
    }
    return out;
  }();
  return all;
}

const Fixture& fx(const std::string& name) {
  const auto it = fixtures().find(name);
  BOOST_REQUIRE_MESSAGE(it != fixtures().end(), "fixture " << name << " missing");
  return it->second;
}

ad::Initializer constant_init(const ad::Array& value) {
  return [value](ad::Graph& g, const ad::Shape&, ad::DType dtype) {
    return ad::constant(g, value.astype(dtype));
  };
}

// The largest |got - want| / max(1, |want|).
double relative_error(const ad::Array& got, const std::vector<double>& want) {
  const auto g = to_doubles(got);
  BOOST_REQUIRE_EQUAL(g.size(), want.size());
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::abs(g[i] - want[i]) / std::max(1.0, std::abs(want[i])));
  return worst;
}

// Builds the layer on a placeholder shaped like the fixture, with gamma and beta initialized from
// it, given the initializers.
using Build = std::function<ad::Tensor(const ad::Tensor& x, const ad::Initializer& gamma,
                                       const ad::Initializer& beta, bool fused)>;

void check_case(const std::string& name, const Build& build) {
  for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    for (const bool fused : {true, false}) {
      BOOST_TEST_CONTEXT(name << " " << dtype << " fused " << fused) {
        const double tol = dtype == ad::DType::Float64 ? 1e-9 : 1e-5;
        ad::Graph g;
        const auto x = ad::placeholder(g, dtype, fx(name + ".x").shape, "x");
        const auto dy = ad::placeholder(g, dtype, fx(name + ".x").shape, "dy");
        const auto v = ad::placeholder(g, dtype, fx(name + ".x").shape, "v");
        const auto y = build(x, constant_init(fx(name + ".gamma").as(dtype)),
                             constant_init(fx(name + ".beta").as(dtype)), fused);
        const auto vars = ad::trainable_variables(g);
        BOOST_REQUIRE_EQUAL(vars.size(), 2u);  // gamma, beta
        const auto grads = ad::gradients({y}, {x, vars[0], vars[1]}, {dy});
        const auto second = ad::gradients({grads[0] * v}, {x, vars[0]});
        ad::Session s(g);
        s.run({ad::global_variables_initializer(g)});
        const auto out = s.run({y, grads[0], grads[1], grads[2], second[0], second[1]},
                               {{x, fx(name + ".x").as(dtype)},
                                {dy, fx(name + ".dy").as(dtype)},
                                {v, fx(name + ".v").as(dtype)}});
        const char* keys[] = {"y", "dx", "dgamma", "dbeta", "ddx", "ddgamma"};
        for (std::size_t k = 0; k < 6; ++k) {
          const double err = relative_error(out[k], fx(name + "." + keys[k]).values);
          BOOST_TEST(err <= tol, keys[k] << ": relative error " << err);
        }
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(normalization_torch_test)

BOOST_AUTO_TEST_CASE(layer_norm_over_the_last_axis_matches_pytorch) {
  check_case("ln_last", [](const ad::Tensor& x, const ad::Initializer& gamma,
                           const ad::Initializer& beta, bool fused) {
    return L::layer_normalization(
        x, {.beta_initializer = beta, .gamma_initializer = gamma, .fused = fused});
  });
}

BOOST_AUTO_TEST_CASE(layer_norm_over_the_last_two_axes_matches_pytorch) {
  check_case("ln_last2", [](const ad::Tensor& x, const ad::Initializer& gamma,
                            const ad::Initializer& beta, bool fused) {
    return L::layer_normalization(
        x, {.axis = {1, 2}, .beta_initializer = beta, .gamma_initializer = gamma, .fused = fused});
  });
}

BOOST_AUTO_TEST_CASE(group_norm_nchw_matches_pytorch) {
  check_case("gn_nchw", [](const ad::Tensor& x, const ad::Initializer& gamma,
                           const ad::Initializer& beta, bool fused) {
    return L::group_normalization(x, {.groups = 3,
                                      .axis = 1,
                                      .beta_initializer = beta,
                                      .gamma_initializer = gamma,
                                      .fused = fused});
  });
}

BOOST_AUTO_TEST_CASE(group_norm_rank_3_matches_pytorch) {
  check_case("gn_ncl", [](const ad::Tensor& x, const ad::Initializer& gamma,
                          const ad::Initializer& beta, bool fused) {
    return L::group_normalization(x, {.groups = 2,
                                      .axis = 1,
                                      .beta_initializer = beta,
                                      .gamma_initializer = gamma,
                                      .fused = fused});
  });
}

BOOST_AUTO_TEST_CASE(instance_norm_nchw_matches_pytorch) {
  check_case("in_nchw", [](const ad::Tensor& x, const ad::Initializer& gamma,
                           const ad::Initializer& beta, bool fused) {
    return L::instance_normalization(
        x, {.axis = 1, .beta_initializer = beta, .gamma_initializer = gamma, .fused = fused});
  });
}

BOOST_AUTO_TEST_SUITE_END()
