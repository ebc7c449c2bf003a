// batch_normalization against PyTorch: fixtures made by tools/make_torch_bn_fixtures.py with
// Debian's python3-torch (an independent implementation), with PyTorch's conventions mapped to
// TF's (momentum, and the unbiased running variance, which is TF's fused-kernel convention).
// Checked: outputs and moving statistics over three training steps, training gradients, double
// backward, and inference outputs and gradients, for NCHW and NHWC float32 and a float64 dense
// case.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "autodiff/autodiff.h"
#include "layers/batch_normalization.h"
#include "tests/support/bn_reference.h"

namespace L = ad::layers;
using ad::testing::max_error;
using ad::testing::to_doubles;

namespace {

struct Fixture {
  ad::Shape shape;
  std::vector<double> values;
  ad::Array as(ad::DType dtype) const { return ad::Array::from(values, shape).astype(dtype); }
};

const std::map<std::string, Fixture>& fixtures() {
  static const std::map<std::string, Fixture> all = [] {
    std::map<std::string, Fixture> out;
    std::ifstream in(std::string(GRADTAPE_SOURCE_DIR) + "/tests/fixtures/torch_batch_norm.txt");
    BOOST_REQUIRE_MESSAGE(in, "missing tests/fixtures/torch_batch_norm.txt");
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

void check_case(const std::string& prefix, int axis, ad::DType dtype, double tol) {
  ad::Graph g;
  const ad::Shape shape = fx(prefix + ".x0").shape;
  auto x = ad::placeholder(g, dtype, shape, "x");
  L::BatchNormalization layer(
      {.axis = axis,
       .momentum = 0.9,
       .epsilon = 1e-3,
       .beta_initializer = constant_init(fx(prefix + ".beta").as(dtype)),
       .gamma_initializer = constant_init(fx(prefix + ".gamma").as(dtype))});
  auto y = layer(x, true);
  auto updates = ad::group(layer.updates());
  auto dy = ad::placeholder(g, dtype, shape, "dy");
  auto v = ad::placeholder(g, dtype, shape, "v");
  const auto grads = ad::gradients({y}, {x, layer.gamma(), layer.beta()}, {dy});
  const auto second = ad::gradients({grads[0] * v}, {x, layer.gamma()});
  auto y_infer = layer(x, false);
  const auto grads_infer = ad::gradients({y_infer}, {x, layer.gamma(), layer.beta()}, {dy});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  for (int step = 0; step < 3; ++step) {
    const auto k = std::to_string(step);
    const auto out = s.run({y, updates}, {{x, fx(prefix + ".x" + k).as(dtype)}});
    BOOST_TEST(max_error(to_doubles(out[0]), fx(prefix + ".y" + k).values) < tol,
               prefix << " y step " << k);
    BOOST_TEST(max_error(to_doubles(s.value(layer.moving_mean())),
                         fx(prefix + ".moving_mean" + k).values) < tol);
    BOOST_TEST(max_error(to_doubles(s.value(layer.moving_variance())),
                         fx(prefix + ".moving_variance" + k).values) < tol);
  }
  const ad::FeedDict feeds{{x, fx(prefix + ".x2").as(dtype)},
                           {dy, fx(prefix + ".dy").as(dtype)},
                           {v, fx(prefix + ".v").as(dtype)}};
  const auto out = s.run({grads[0], grads[1], grads[2], second[0], second[1]}, feeds);
  BOOST_TEST(max_error(to_doubles(out[0]), fx(prefix + ".dx").values) < tol, prefix << " dx");
  BOOST_TEST(max_error(to_doubles(out[1]), fx(prefix + ".dgamma").values) < tol,
             prefix << " dgamma");
  BOOST_TEST(max_error(to_doubles(out[2]), fx(prefix + ".dbeta").values) < tol, prefix << " dbeta");
  BOOST_TEST(max_error(to_doubles(out[3]), fx(prefix + ".ddx").values) < tol, prefix << " ddx");
  BOOST_TEST(max_error(to_doubles(out[4]), fx(prefix + ".ddgamma").values) < tol,
             prefix << " ddgamma");
  const ad::FeedDict infer_feeds{{x, fx(prefix + ".x_infer").as(dtype)},
                                 {dy, fx(prefix + ".dy").as(dtype)}};
  const auto inf = s.run({y_infer, grads_infer[0], grads_infer[1], grads_infer[2]}, infer_feeds);
  BOOST_TEST(max_error(to_doubles(inf[0]), fx(prefix + ".y_infer").values) < tol,
             prefix << " y_infer");
  BOOST_TEST(max_error(to_doubles(inf[1]), fx(prefix + ".dx_infer").values) < tol,
             prefix << " dx_infer");
  BOOST_TEST(max_error(to_doubles(inf[2]), fx(prefix + ".dgamma_infer").values) < tol,
             prefix << " dgamma_infer");
  BOOST_TEST(max_error(to_doubles(inf[3]), fx(prefix + ".dbeta_infer").values) < tol,
             prefix << " dbeta_infer");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batch_normalization_torch_test)

BOOST_AUTO_TEST_CASE(nchw_float32_matches_pytorch_with_the_fused_convention) {
  check_case("nchw", 1, ad::DType::Float32, 2e-5);
}

BOOST_AUTO_TEST_CASE(nhwc_float32_matches_pytorch_with_the_fused_convention) {
  check_case("nhwc", 3, ad::DType::Float32, 2e-5);
}

BOOST_AUTO_TEST_CASE(dense_float64_matches_pytorch_with_tf_biased_moving_variance) {
  check_case("dense", -1, ad::DType::Float64, 1e-12);
}

BOOST_AUTO_TEST_SUITE_END()
