// dense: values vs a reference loop, shapes (unknown batch, rank > 2), variable names, scopes and
// reuse, regularization and activity losses, gradients vs finite differences, error texts.
#include "layers/dense.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;

namespace {

std::vector<std::string> names(const std::vector<ad::Variable>& vars) {
  std::vector<std::string> out;
  for (const auto& v : vars) out.push_back(v.name());
  return out;
}

// y[r, u] = sum_i x[r, i] k[i, u] + b[u] over the rows of x viewed as [rows, in].
std::vector<double> reference(const ad::Array& x, const ad::Array& k, const ad::Array& b) {
  const std::int64_t in = k.shape()[0];
  const std::int64_t units = k.shape()[1];
  const std::int64_t rows = x.size() / in;
  std::vector<double> y(static_cast<std::size_t>(rows * units));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t u = 0; u < units; ++u) {
      double s = b.empty() ? 0.0 : b.flat(u);
      for (std::int64_t i = 0; i < in; ++i) s += x.flat(r * in + i) * k.flat(i * units + u);
      y[static_cast<std::size_t>(r * units + u)] = s;
    }
  }
  return y;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dense_test)

BOOST_AUTO_TEST_CASE(output_matches_reference_with_unknown_batch) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 5}, "x");
  L::Dense layer(3);
  auto y = layer(x);
  BOOST_TEST(y.shape() == ad::Shape({-1, 3}));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto k = ad::testing::random_array({5, 3}, 1);
  const auto b = ad::testing::random_array({3}, 2);
  s.set_value(layer.kernel(), k);
  s.set_value(layer.bias(), b);
  for (std::int64_t batch : {1, 4}) {
    const auto xv = ad::testing::random_array({batch, 5}, 3);
    const auto out = s.eval(y, {{x, xv}});
    BOOST_TEST(out.shape() == ad::Shape({batch, 3}));
    const auto expected = reference(xv, k, b);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      BOOST_TEST(out.data<double>()[i] == expected[i], boost::test_tools::tolerance(1e-12));
    }
  }
}

BOOST_AUTO_TEST_CASE(rank_3_input_applies_on_the_last_axis) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 4, 6}, "x");
  auto x2 = ad::placeholder(g, ad::DType::Float64, {-1, -1, 6}, "x2");
  L::Dense layer(2, {.activation = ad::tanh});
  auto y = layer(x);
  auto y2 = layer(x2);  // two unknown dims: the output shape comes from the run-time shape
  BOOST_TEST(y.shape() == ad::Shape({-1, 4, 2}));
  BOOST_TEST(y2.shape() == ad::Shape({-1, -1, 2}));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto xv = ad::testing::random_array({3, 4, 6}, 4);
  const auto outs = s.run({y, y2}, {{x, xv}, {x2, xv}});
  const auto expected = reference(xv, s.value(layer.kernel()), s.value(layer.bias()));
  BOOST_TEST(outs[0].shape() == ad::Shape({3, 4, 2}));
  BOOST_TEST(outs[1].shape() == ad::Shape({3, 4, 2}));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(outs[0].data<double>()[i] == std::tanh(expected[i]),
               boost::test_tools::tolerance(1e-12));
    BOOST_TEST(outs[1].data<double>()[i] == std::tanh(expected[i]),
               boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(default_kernel_is_glorot_uniform_and_bias_zero) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 30}, "x");
  L::Dense layer(20);
  (void)layer(x);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const double limit = std::sqrt(6.0 / (30 + 20));
  const auto k = s.value(layer.kernel());
  double max_abs = 0;
  double sum_sq = 0;
  for (float v : k.data<float>()) {
    max_abs = std::max(max_abs, std::abs(static_cast<double>(v)));
    sum_sq += static_cast<double>(v) * v;
  }
  BOOST_TEST(max_abs <= limit);
  // A uniform on [-limit, limit] has variance limit^2 / 3; 600 draws land well within 20%.
  BOOST_TEST(sum_sq / 600 == limit * limit / 3, boost::test_tools::tolerance(0.2));
  for (float v : s.value(layer.bias()).data<float>()) BOOST_TEST(v == 0.0f);
}

BOOST_AUTO_TEST_CASE(names_are_uniquified_and_reuse_shares_variables) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  (void)L::dense(x, 3);
  (void)L::dense(x, 3);
  (void)L::dense(x, 128, {.name = "fc1"});
  BOOST_TEST(names(ad::global_variables(g)) ==
                 (std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel",
                                           "dense_1/bias", "fc1/kernel", "fc1/bias"}),
             boost::test_tools::per_element());
  BOOST_TEST(ad::global_variables(g)[4].shape() == ad::Shape({4, 128}));
  BOOST_CHECK_EXCEPTION((void)L::dense(x, 128, {.name = "fc1"}), ad::ValueError,
                        (MessageHas{{"Variable fc1/kernel already exists"}}));
  (void)L::dense(x, 128, {.name = "fc1", .reuse = ad::Reuse::kTrue});
  BOOST_TEST(ad::global_variables(g).size() == 6u);
  BOOST_CHECK_EXCEPTION(
      (void)L::dense(x, 64, {.name = "fc1", .reuse = ad::Reuse::kTrue}), ad::ValueError,
      (MessageHas{{"Trying to share variable fc1/kernel", "[4, 64]", "[4, 128]"}}));
  {
    ad::VariableScope scope(g, "tower");
    (void)L::dense(x, 2, {.use_bias = false});
  }
  BOOST_TEST(ad::global_variables(g).back().name() == "tower/dense/kernel");
  // The class form uniquifies its name; calling an object again shares its variables.
  L::Dense a(2, {.name = "head"});
  L::Dense b(2, {.name = "head"});
  (void)a(x);
  (void)a(x);
  (void)b(x);
  BOOST_TEST(a.scope_name() == "head");
  BOOST_TEST(b.scope_name() == "head_1");
  BOOST_TEST(ad::global_variables(g).size() == 11u);
}

BOOST_AUTO_TEST_CASE(second_call_with_other_features_is_rejected) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  auto wide = ad::placeholder(g, ad::DType::Float32, {-1, 5}, "wide");
  L::Dense layer(3, {.name = "fc"});
  (void)layer(x);
  BOOST_CHECK_EXCEPTION((void)layer(wide), ad::ValueError,
                        (MessageHas{{"dense 'fc'", "5 features", "[?, 5]", "built for 4"}}));
}

BOOST_AUTO_TEST_CASE(bad_inputs_name_the_layer_and_shape) {
  ad::Graph g;
  auto vec = ad::placeholder(g, ad::DType::Float32, {4}, "vec");
  BOOST_CHECK_EXCEPTION((void)L::dense(vec, 3, {.name = "fc"}), ad::ValueError,
                        (MessageHas{{"dense 'fc'", "rank 1", "[4]"}}));
  auto unknown = ad::placeholder(g, ad::DType::Float32, {2, -1}, "unknown");
  BOOST_CHECK_EXCEPTION((void)L::dense(unknown, 3), ad::ValueError,
                        (MessageHas{{"dense 'dense", "last dimension", "[2, ?]"}}));
  auto ints = ad::placeholder(g, ad::DType::Int64, {2, 3}, "ints");
  BOOST_CHECK_EXCEPTION((void)L::dense(ints, 3), ad::ValueError,
                        (MessageHas{{"dense 'dense", "int64", "float32"}}));
  BOOST_CHECK_EXCEPTION((void)L::dense(vec, 0), ad::ValueError, (MessageHas{{"units", "0"}}));
}

BOOST_AUTO_TEST_CASE(trainable_false_and_use_bias_false) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  L::Dense frozen(3, {.use_bias = false, .trainable = false});
  (void)frozen(x);
  BOOST_TEST(!frozen.bias());
  BOOST_TEST(frozen.variables().size() == 1u);
  BOOST_TEST(frozen.trainable_variables().empty());
  BOOST_TEST(ad::trainable_variables(g).empty());
  BOOST_TEST(ad::global_variables(g).size() == 1u);
}

BOOST_AUTO_TEST_CASE(regularization_and_activity_losses_are_collected) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 3}, "x");
  L::Dense layer(2, {.kernel_regularizer = ad::regularizers::l2(0.5),
                     .bias_regularizer = ad::regularizers::l1(0.25),
                     .activity_regularizer = ad::regularizers::l1(0.1),
                     .name = "fc"});
  (void)layer(x);
  BOOST_TEST(layer.losses().size() == 3u);
  const auto losses = g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES);
  BOOST_REQUIRE(losses.size() == 3u);
  auto total = ad::get_regularization_loss(g, "fc");
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto k = ad::testing::random_array({3, 2}, 5);
  const auto b = ad::testing::random_array({2}, 6);
  s.set_value(layer.kernel(), k);
  s.set_value(layer.bias(), b);
  const auto xv = ad::testing::random_array({4, 3}, 7);
  const auto values = s.run({losses[0], losses[1], losses[2], total}, {{x, xv}});
  double k_sq = 0;
  for (double v : k.data<double>()) k_sq += v * v;
  double b_abs = 0;
  for (double v : b.data<double>()) b_abs += std::abs(v);
  double y_abs = 0;
  for (double v : reference(xv, k, b)) y_abs += std::abs(v);
  BOOST_TEST(values[0].item<double>() == 0.5 * k_sq, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(values[1].item<double>() == 0.25 * b_abs, boost::test_tools::tolerance(1e-12));
  // Activity loss: regularizer(output) divided by the batch size, as TF1 layers do.
  BOOST_TEST(values[2].item<double>() == 0.1 * y_abs / 4, boost::test_tools::tolerance(1e-12));
  // The layer's scope gathers all three.
  BOOST_TEST(values[3].item<double>() == 0.5 * k_sq + 0.25 * b_abs + 0.1 * y_abs / 4,
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 2, 4}, "x");
  L::Dense layer(3, {.activation = ad::tanh});
  auto y = layer(x);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.set_value(layer.bias(), ad::testing::random_array({3}, 8));
  const auto xv = ad::testing::random_array({2, 2, 4}, 9);
  const auto first = ad::compute_gradient_error(s, {x}, {xv}, y);
  BOOST_TEST(first.max_error <= 1e-6, first.worst);
  BOOST_TEST(ad::compute_gradient_error(s, {layer.kernel()}, y, {{x, xv}}).max_error <= 1e-6);
  BOOST_TEST(ad::compute_gradient_error(s, {layer.bias()}, y, {{x, xv}}).max_error <= 1e-6);
  // Second order: gradients of the (projected) input and kernel gradients, w.r.t. the input and
  // the kernel.
  auto v = ad::placeholder(g, ad::DType::Float64, {2, 2, 4}, "v");
  const auto vv = ad::testing::random_array({2, 2, 4}, 10);
  const auto dx = ad::gradients(y, {x})[0];
  const auto dk = ad::gradients(y, {layer.kernel()})[0];
  const auto second = ad::compute_gradient_error(s, {x}, {xv}, dx * v, {{v, vv}});
  BOOST_TEST(second.max_error <= 1e-6, second.worst);
  const auto mixed = ad::compute_gradient_error(s, {x}, {xv}, dk);
  BOOST_TEST(mixed.max_error <= 1e-6, mixed.worst);
  BOOST_TEST(
      ad::compute_gradient_error(s, {layer.kernel()}, dx * v, {{x, xv}, {v, vv}}).max_error <=
      1e-6);
}

BOOST_AUTO_TEST_SUITE_END()
