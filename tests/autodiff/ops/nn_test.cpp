// Neural-network ops (softmax, log_softmax, cross-entropies, l2_loss, batch_normalization): values
// against float64 reference loops written here, gradients (first and second order) against float64
// central differences, extreme logits, and error messages.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

std::vector<double> values_of(const ad::Array& a) {
  std::vector<double> v(static_cast<std::size_t>(a.size()));
  for (std::int64_t i = 0; i < a.size(); ++i) v[static_cast<std::size_t>(i)] = a.flat(i);
  return v;
}

// NumPy-style reference: softmax (or log_softmax) of a row-major array along `axis`, in long
// double, written as the textbook formula exp(x_i) / sum_j exp(x_j) with a max shift.
std::vector<double> reference_softmax(const ad::Array& x, int axis, bool log) {
  const ad::Shape& shape = x.shape();
  std::int64_t outer = 1;
  std::int64_t inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < shape.rank(); ++d) inner *= shape[d];
  const std::int64_t length = shape[axis];
  const auto v = values_of(x);
  std::vector<double> y(v.size());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t a) {
        return static_cast<std::size_t>((o * length + a) * inner + i);
      };
      long double m = v[at(0)];
      for (std::int64_t a = 1; a < length; ++a) m = std::max<long double>(m, v[at(a)]);
      long double sum = 0;
      for (std::int64_t a = 0; a < length; ++a)
        sum += std::exp(static_cast<long double>(v[at(a)]) - m);
      for (std::int64_t a = 0; a < length; ++a) {
        const long double shifted = static_cast<long double>(v[at(a)]) - m;
        y[at(a)] = static_cast<double>(log ? shifted - std::log(sum) : std::exp(shifted) / sum);
      }
    }
  }
  return y;
}

// Largest |a - b| / max(1, |b|) over the elements.
double max_relative_error(const ad::Array& actual, const std::vector<double>& expected) {
  BOOST_REQUIRE_EQUAL(actual.size(), static_cast<std::int64_t>(expected.size()));
  double worst = 0;
  for (std::int64_t i = 0; i < actual.size(); ++i) {
    const double e = expected[static_cast<std::size_t>(i)];
    worst = std::max(worst, std::abs(actual.flat(i) - e) / std::max(1.0, std::abs(e)));
  }
  return worst;
}

bool all_finite(const ad::Array& a) {
  for (std::int64_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a.flat(i))) return false;
  }
  return true;
}

ad::Array int64_vector(const std::vector<std::int64_t>& v) { return ad::Array::vector(v); }

// Rows of probability distributions (positive, summing to 1), float64.
ad::Array random_distributions(const ad::Shape& shape, std::uint64_t seed) {
  const ad::Array raw = random_array(shape, seed, 0.1, 1.0);
  auto v = values_of(raw);
  const std::int64_t classes = shape[shape.rank() - 1];
  for (std::size_t r = 0; r < v.size(); r += static_cast<std::size_t>(classes)) {
    double sum = 0;
    for (std::int64_t j = 0; j < classes; ++j) sum += v[r + static_cast<std::size_t>(j)];
    for (std::int64_t j = 0; j < classes; ++j) v[r + static_cast<std::size_t>(j)] /= sum;
  }
  return ad::Array::from(v, shape);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nn_test)

// ---- softmax, log_softmax -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax_match_reference_along_every_axis) {
  const ad::Array x64 = random_array({3, 4, 5}, 1, -4, 4);
  for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    const double tolerance = dtype == ad::DType::Float64 ? 1e-14 : 1e-6;
    const ad::Array x = x64.astype(dtype);
    for (const int axis : {0, 1, 2, -1, -3}) {
      ad::Graph g;
      const auto input = ad::constant(g, x);
      ad::Session s(g);
      const auto out = s.run({ad::nn::softmax(input, axis), ad::nn::log_softmax(input, axis)});
      const int a = axis < 0 ? axis + 3 : axis;
      BOOST_TEST(out[0].dtype() == dtype);
      BOOST_TEST(out[0].shape() == x.shape());
      BOOST_TEST(max_relative_error(out[0], reference_softmax(x, a, false)) <= tolerance);
      BOOST_TEST(max_relative_error(out[1], reference_softmax(x, a, true)) <= tolerance);
    }
  }
}

BOOST_AUTO_TEST_CASE(large_softmax_matches_reference_on_every_path) {
  // Large enough for the parallel loops, with a non-last axis wider than one column stripe.
  const ad::Array x = random_array({6, 50, 130}, 2, -10, 10).astype(ad::DType::Float32);
  for (const int axis : {0, 1, 2}) {
    ad::Graph g;
    const auto input = ad::constant(g, x);
    ad::Session s(g);
    const auto out = s.run({ad::nn::softmax(input, axis), ad::nn::log_softmax(input, axis)});
    BOOST_TEST(max_relative_error(out[0], reference_softmax(x, axis, false)) <= 1e-6);
    BOOST_TEST(max_relative_error(out[1], reference_softmax(x, axis, true)) <= 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(float32_softmax_is_accurate_to_a_few_ulps_even_for_tiny_probabilities) {
  // Logits spread over 80 nats: probabilities from about 1 down to 1e-36, all normal floats. Any
  // float32 softmax rounds x - max(x) to float first (an error of up to 80 * 2^-24 in the exponent,
  // i.e. 5e-6 relative), so the reference takes that rounded difference and is exact from there:
  // what is checked is the exponential and the normalization.
  const ad::Array x = random_array({4, 1000}, 3, -80, 0).astype(ad::DType::Float32);
  ad::Graph g;
  const auto input = ad::constant(g, x);
  ad::Session s(g);
  const auto out = s.run({ad::nn::softmax(input, 1), ad::nn::softmax(input, 0)});
  const auto values = x.data<float>();
  for (const int axis : {1, 0}) {
    const std::int64_t rows = axis == 1 ? 4 : 1000;
    const std::int64_t length = axis == 1 ? 1000 : 4;
    auto at = [&](std::int64_t r, std::int64_t a) {
      return static_cast<std::size_t>(axis == 1 ? r * 1000 + a : a * 1000 + r);
    };
    const auto& actual = out[axis == 1 ? 0 : 1];
    double worst = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      float m = values[at(r, 0)];
      for (std::int64_t a = 1; a < length; ++a) m = std::max(m, values[at(r, a)]);
      long double sum = 0;
      for (std::int64_t a = 0; a < length; ++a)
        sum += std::exp((long double)(values[at(r, a)] - m));
      for (std::int64_t a = 0; a < length; ++a) {
        const long double e = std::exp((long double)(values[at(r, a)] - m)) / sum;
        const auto got = static_cast<long double>(actual.data<float>()[at(r, a)]);
        worst = std::max(worst, static_cast<double>(std::abs(got - e) / e));
      }
    }
    BOOST_TEST(worst <= 4e-7, "axis " << axis << ": worst relative error " << worst);
  }
}

BOOST_AUTO_TEST_CASE(softmax_underflows_to_zero_and_propagates_nan_per_row) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  ad::Graph g;
  const auto x = ad::constant(
      g, ad::Array::from<float>({0.f, -100.f, -200.f, -inf, 1.f, nan, 2.f, 3.f}, {2, 4}));
  ad::Session s(g);
  const auto out = s.run({ad::nn::softmax(x), ad::nn::log_softmax(x)});
  BOOST_TEST(out[0].at({0, 0}) == 1.0);
  BOOST_TEST(out[0].at({0, 1}) == 0.0);
  BOOST_TEST(out[0].at({0, 2}) == 0.0);
  BOOST_TEST(out[0].at({0, 3}) == 0.0);
  BOOST_TEST(out[1].at({0, 0}) == 0.0);
  BOOST_TEST(out[1].at({0, 1}) == -100.0);
  BOOST_TEST(std::isinf(out[1].at({0, 3})));
  for (std::int64_t j = 0; j < 4; ++j) {
    BOOST_TEST(std::isnan(out[0].at({1, j})));
    BOOST_TEST(std::isnan(out[1].at({1, j})));
  }
}

BOOST_AUTO_TEST_CASE(extreme_logits_give_finite_exact_values) {
  for (const ad::DType dtype : {ad::DType::Float32, ad::DType::Float64}) {
    ad::Graph g;
    const auto logits = ad::constant(
        g, ad::Array::from<double>({1000, -1000, 0, -1000, -1000, -1000}, {2, 3}).astype(dtype));
    const auto labels = ad::constant(g, int64_vector({1, 2}));
    const auto dense_labels =
        ad::constant(g, ad::Array::from<double>({0, 1, 0, 0, 0, 1}, {2, 3}).astype(dtype));
    const auto sparse = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
    const auto dense = ad::nn::softmax_cross_entropy_with_logits(dense_labels, logits);
    const auto sigmoid = ad::nn::sigmoid_cross_entropy_with_logits(dense_labels, logits);
    const auto grads = ad::gradients({sparse, dense, sigmoid}, {logits});
    ad::Session s(g, {.check_numerics = true});
    const auto out = s.run(
        {ad::nn::softmax(logits), ad::nn::log_softmax(logits), sparse, dense, sigmoid, grads[0]});
    for (const auto& a : out) BOOST_TEST(all_finite(a));
    const double third = 1.0 / 3.0;
    const double tol = dtype == ad::DType::Float64 ? 1e-15 : 1e-6;
    BOOST_TEST(max_relative_error(out[0], {1, 0, 0, third, third, third}) <= tol);
    BOOST_TEST(max_relative_error(out[1], {0, -2000, -1000, -std::log(3.0), -std::log(3.0),
                                           -std::log(3.0)}) <= tol);
    // logsumexp(row) - row[label]: 1000 - (-1000) and log(3).
    BOOST_TEST(max_relative_error(out[2], {2000, std::log(3.0)}) <= tol);
    BOOST_TEST(max_relative_error(out[3], {2000, std::log(3.0)}) <= tol);
    // max(x, 0) - x z + log1p(exp(-|x|)) at |x| = 1000 is max(x, 0) - x z; log1p(1) at x = 0.
    BOOST_TEST(max_relative_error(out[4], {1000, 1000, std::log(2.0), 0, 0, 1000}) <= tol);
    // Gradient sum: 2 (softmax - onehot) + (sigmoid - z).
    BOOST_TEST(max_relative_error(out[5], {2 * 1 + 1, 2 * -1 - 1, 0 + 0.5, 2 * third, 2 * third,
                                           2 * (third - 1) - 1}) <= tol);
  }
}

BOOST_AUTO_TEST_CASE(softmax_gradients_match_finite_differences) {
  for (const int axis : {-1, 0, 1}) {
    check_gradient([&](const auto& x) { return ad::nn::softmax(x[0], axis); },
                   {random_array({3, 4, 2}, 10, -2, 2)}, 1e-6, true);
    check_gradient([&](const auto& x) { return ad::nn::log_softmax(x[0], axis); },
                   {random_array({3, 4, 2}, 11, -2, 2)}, 1e-6, true);
  }
}

// ---- sparse softmax cross-entropy ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sparse_cross_entropy_matches_closed_form_and_its_gradient) {
  const ad::Array logits64 = random_array({5, 4}, 20, -3, 3);
  const std::vector<std::int64_t> label_values{0, 3, 1, 1, 2};
  ad::Graph g;
  // Unknown batch and class dims: everything is resolved at run time.
  const auto logits = ad::placeholder(g, ad::DType::Float64, {-1, -1}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  const auto weights = ad::placeholder(g, ad::DType::Float64, {-1}, "weights");
  const auto loss = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
  BOOST_TEST(loss.shape() == ad::Shape({-1}));
  const auto grad = ad::gradients(ad::reduce_sum(loss * weights), {logits})[0];
  ad::Session s(g);
  const ad::Array w = random_array({5}, 21, 0.5, 2);
  const auto out =
      s.run({loss, grad}, {{logits, logits64}, {labels, int64_vector(label_values)}, {weights, w}});
  const auto p = reference_softmax(logits64, 1, false);
  std::vector<double> expected_loss;
  std::vector<double> expected_grad;
  for (std::int64_t b = 0; b < 5; ++b) {
    const auto label = label_values[static_cast<std::size_t>(b)];
    expected_loss.push_back(-std::log(p[static_cast<std::size_t>(b * 4 + label)]));
    for (std::int64_t j = 0; j < 4; ++j) {
      const double onehot = j == label ? 1.0 : 0.0;
      expected_grad.push_back((p[static_cast<std::size_t>(b * 4 + j)] - onehot) * w.flat(b));
    }
  }
  BOOST_TEST(max_relative_error(out[0], expected_loss) <= 1e-14);
  BOOST_TEST(max_relative_error(out[1], expected_grad) <= 1e-14);
}

BOOST_AUTO_TEST_CASE(sparse_cross_entropy_backward_reuses_the_saved_softmax) {
  ad::Graph g;
  const auto logits = ad::placeholder(g, ad::DType::Float32, {8, 10}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Int64, {8}, "labels");
  const auto loss = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
  const int before = g.num_nodes();
  (void)ad::gradients(loss, {logits});
  for (int n = before; n < g.num_nodes(); ++n) {
    const auto op = g.node(n).op->name;
    BOOST_TEST((op != "Exp" && op != "Softmax" && op != "SparseSoftmaxCrossEntropyWithLogits"),
               "the backward recomputes the softmax in node " << g.node(n).name);
  }
}

BOOST_AUTO_TEST_CASE(sparse_cross_entropy_gradients_match_finite_differences) {
  const ad::Array labels = int64_vector({2, 0, 1, 2});
  check_gradient(
      [&](const auto& x) {
        const auto l = ad::constant(x[0].graph(), labels);
        return ad::nn::sparse_softmax_cross_entropy_with_logits(l, x[0]);
      },
      {random_array({4, 3}, 30, -3, 3)}, 1e-6, true);
  // The loss weighted by another input: second order also reaches the weights through dloss.
  check_gradient(
      [&](const auto& x) {
        const auto l = ad::constant(x[0].graph(), labels);
        return ad::nn::sparse_softmax_cross_entropy_with_logits(l, x[0] * x[1]) * ad::square(x[2]);
      },
      {random_array({4, 3}, 31, -3, 3), random_array({4, 1}, 32, 0.5, 2),
       random_array({4}, 33, -2, 2)},
      1e-6, true);
}

BOOST_AUTO_TEST_CASE(sparse_label_out_of_range_names_row_label_and_class_count) {
  ad::Graph g;
  const auto logits = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  const auto loss = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
  ad::Session s(g);
  const ad::Array x = ad::Array::full(ad::DType::Float32, {3, 3}, 0.5);
  BOOST_CHECK_EXCEPTION(
      s.eval(loss, {{logits, x}, {labels, int64_vector({0, 7, 1})}}), ad::InvalidArgumentError,
      (MessageHas{{"SparseSoftmaxCrossEntropyWithLogits 'SparseSoftmaxCrossEntropyWithLogits'",
                   "label 7", "row 1", "3 classes", "[0, 3)"}}));
  BOOST_CHECK_EXCEPTION(s.eval(loss, {{logits, x}, {labels, int64_vector({0, 1, -1})}}),
                        ad::InvalidArgumentError, (MessageHas{{"label -1", "row 2", "3 classes"}}));
  BOOST_CHECK_EXCEPTION(s.eval(loss, {{logits, x}, {labels, int64_vector({0, 1})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"labels [2]", "logits [3, 3]", "batch size", "2 != 3"}}));
  // The session stays usable.
  const auto ok = s.eval(loss, {{logits, x}, {labels, int64_vector({0, 1, 2})}});
  BOOST_TEST(std::abs(ok.flat(2) - std::log(3.0)) <= 1e-6);
}

BOOST_AUTO_TEST_CASE(sparse_cross_entropy_rejects_bad_shapes_and_dtypes_when_built) {
  ad::Graph g;
  const auto logits = ad::placeholder(g, ad::DType::Float32, {5, 3}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Int64, {4}, "labels");
  const auto float_labels = ad::placeholder(g, ad::DType::Float32, {5}, "float_labels");
  const auto matrix_labels = ad::placeholder(g, ad::DType::Int64, {5, 1}, "matrix_labels");
  const auto cube = ad::placeholder(g, ad::DType::Float32, {5, 3, 2}, "cube");
  const auto int_logits = ad::placeholder(g, ad::DType::Int64, {5, 3}, "int_logits");
  const auto good_labels = ad::placeholder(g, ad::DType::Int64, {5}, "good_labels");
  using ad::nn::sparse_softmax_cross_entropy_with_logits;
  BOOST_CHECK_EXCEPTION(
      (void)sparse_softmax_cross_entropy_with_logits(labels, logits), ad::ValueError,
      (MessageHas{{"SparseSoftmaxCrossEntropyWithLogits 'SparseSoftmaxCrossEntropyWithLogits'",
                   "[4]", "[5, 3]", "batch size", "4 != 5"}}));
  BOOST_CHECK_EXCEPTION((void)sparse_softmax_cross_entropy_with_logits(float_labels, logits),
                        ad::ValueError,
                        (MessageHas{{"'float_labels:0'", "float32[5]", "int64", "rank 1"}}));
  BOOST_CHECK_EXCEPTION((void)sparse_softmax_cross_entropy_with_logits(matrix_labels, logits),
                        ad::ValueError,
                        (MessageHas{{"'matrix_labels:0'", "int64[5, 1]", "rank 1"}}));
  BOOST_CHECK_EXCEPTION((void)sparse_softmax_cross_entropy_with_logits(good_labels, cube),
                        ad::ValueError, (MessageHas{{"'cube:0'", "float32[5, 3, 2]", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)sparse_softmax_cross_entropy_with_logits(good_labels, int_logits),
                        ad::ValueError, (MessageHas{{"'int_logits:0'", "float32 or float64"}}));
}

// ---- dense softmax cross-entropy ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_matches_closed_form_and_tf_gradient) {
  const ad::Array logits64 = random_array({4, 5}, 40, -3, 3);
  const ad::Array labels64 = random_distributions({4, 5}, 41);
  ad::Graph g;
  const auto logits = ad::constant(g, logits64);
  const auto labels = ad::constant(g, labels64);
  const auto loss = ad::nn::softmax_cross_entropy_with_logits(labels, logits);
  BOOST_TEST(loss.shape() == ad::Shape({4}));
  const auto grads = ad::gradients(loss, {logits, labels});
  ad::Session s(g);
  const auto out = s.run({loss, grads[0], grads[1]});
  const auto log_p = reference_softmax(logits64, 1, true);
  const auto z = values_of(labels64);
  std::vector<double> expected_loss(4, 0.0);
  std::vector<double> expected_dlogits;
  std::vector<double> expected_dlabels;
  for (std::size_t i = 0; i < z.size(); ++i) {
    expected_loss[i / 5] -= z[i] * log_p[i];
    // Each row of labels sums to 1, so this is TF's softmax - labels.
    expected_dlogits.push_back(std::exp(log_p[i]) - z[i]);
    expected_dlabels.push_back(-log_p[i]);
  }
  BOOST_TEST(max_relative_error(out[0], expected_loss) <= 1e-14);
  BOOST_TEST(max_relative_error(out[1], expected_dlogits) <= 1e-14);
  BOOST_TEST(max_relative_error(out[2], expected_dlabels) <= 1e-14);
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_gradients_match_finite_differences) {
  // Labels that are not distributions too: the gradient is exact for any labels.
  check_gradient(
      [](const auto& x) { return ad::nn::softmax_cross_entropy_with_logits(x[0], x[1]); },
      {random_distributions({3, 4}, 50), random_array({3, 4}, 51, -3, 3)}, 1e-6, true);
  check_gradient(
      [](const auto& x) { return ad::nn::softmax_cross_entropy_with_logits(x[0], x[1]); },
      {random_array({3, 4}, 52, -1, 1), random_array({3, 4}, 53, -3, 3)}, 1e-6, true);
  // Higher rank: classes along the last axis, loss shaped like the leading dims.
  check_gradient(
      [](const auto& x) {
        const auto loss = ad::nn::softmax_cross_entropy_with_logits(x[0], x[1]);
        BOOST_TEST(loss.shape() == ad::Shape({2, 3}));
        return loss;
      },
      {random_distributions({2, 3, 4}, 54), random_array({2, 3, 4}, 55, -3, 3)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_rejects_mismatched_shapes) {
  ad::Graph g;
  const auto logits = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "labels");
  const auto labels64 = ad::placeholder(g, ad::DType::Float64, {-1, 3}, "labels64");
  const auto unknown = ad::placeholder(g, ad::DType::Float32, {-1, -1}, "unknown");
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::softmax_cross_entropy_with_logits(labels, logits), ad::ValueError,
      (MessageHas{{"SoftmaxCrossEntropyWithLogits 'SoftmaxCrossEntropyWithLogits'", "[?, 4]",
                   "[?, 3]", "same shape"}}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::softmax_cross_entropy_with_logits(labels64, logits),
                        ad::ValueError, (MessageHas{{"'labels64:0'", "float64", "ad::cast"}}));
  const auto loss = ad::nn::softmax_cross_entropy_with_logits(unknown, logits);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(loss, {{unknown, ad::Array(ad::DType::Float32, {2, 4})},
                                      {logits, ad::Array(ad::DType::Float32, {2, 3})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"'SoftmaxCrossEntropyWithLogits'", "[2, 4]", "[2, 3]"}}));
}

// ---- sigmoid cross-entropy, l2_loss -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sigmoid_cross_entropy_matches_logistic_loss) {
  const ad::Array x = random_array({3, 4}, 60, -5, 5);
  const ad::Array z = random_array({3, 4}, 61, 0, 1);
  ad::Graph g;
  const auto loss =
      ad::nn::sigmoid_cross_entropy_with_logits(ad::constant(g, z), ad::constant(g, x));
  ad::Session s(g);
  const auto out = s.eval(loss);
  std::vector<double> expected;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const double sig = 1.0 / (1.0 + std::exp(-x.flat(i)));
    expected.push_back(-z.flat(i) * std::log(sig) - (1 - z.flat(i)) * std::log(1 - sig));
  }
  BOOST_TEST(max_relative_error(out, expected) <= 1e-12);
}

BOOST_AUTO_TEST_CASE(sigmoid_cross_entropy_and_l2_loss_gradients_match_finite_differences) {
  check_gradient(
      [](const auto& x) { return ad::nn::sigmoid_cross_entropy_with_logits(x[0], x[1]); },
      {random_array({3, 4}, 70, 0, 1), random_array({3, 4}, 71, -4, 4)}, 1e-6, true);
  check_gradient([](const auto& x) { return ad::nn::l2_loss(x[0]); },
                 {random_array({3, 4, 2}, 72, -2, 2)}, 1e-6, true);
  check_gradient([](const auto& x) { return ad::nn::l2_loss(x[0] * x[1]); },
                 {random_array({5}, 73, -2, 2), random_array({5}, 74, -2, 2)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(sigmoid_cross_entropy_rejects_mismatched_shapes) {
  ad::Graph g;
  const auto logits = ad::placeholder(g, ad::DType::Float32, {2, 3}, "logits");
  const auto labels = ad::placeholder(g, ad::DType::Float32, {3, 2}, "labels");
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::sigmoid_cross_entropy_with_logits(labels, logits), ad::ValueError,
      (MessageHas{{"SigmoidCrossEntropyWithLogits", "[3, 2]", "[2, 3]", "same shape"}}));
}

BOOST_AUTO_TEST_CASE(l2_loss_of_float32_stays_within_1e5_of_float64) {
  const ad::Array x64 = random_array({1000, 101}, 80, -3, 3);
  long double expected = 0;
  for (std::int64_t i = 0; i < x64.size(); ++i) {
    const auto v = static_cast<long double>(static_cast<float>(x64.flat(i)));
    expected += v * v;
  }
  expected /= 2;
  ad::Graph g;
  const auto loss = ad::nn::l2_loss(ad::constant(g, x64.astype(ad::DType::Float32)));
  BOOST_TEST(loss.shape() == ad::Shape({}));
  ad::Session s(g);
  const auto first = s.eval(loss);
  const double value = first.item<float>();
  BOOST_TEST(std::abs(value - static_cast<double>(expected)) / static_cast<double>(expected) <=
             1e-6);
  // Repeated runs give the same bits (fixed block order).
  BOOST_TEST(s.eval(loss).bitwise_equal(first));
}

// ---- batch_normalization ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(batch_normalization_follows_tf_op_order_bit_for_bit) {
  const ad::Array x = random_array({4, 3}, 90, -3, 3).astype(ad::DType::Float32);
  const ad::Array mean = random_array({3}, 91, -1, 1).astype(ad::DType::Float32);
  const ad::Array variance = random_array({3}, 92, 0.1, 2).astype(ad::DType::Float32);
  const ad::Array offset = random_array({3}, 93, -1, 1).astype(ad::DType::Float32);
  const ad::Array scale = random_array({3}, 94, 0.5, 2).astype(ad::DType::Float32);
  const double epsilon = 1e-3;
  ad::Graph g;
  const auto cx = ad::constant(g, x);
  const auto cm = ad::constant(g, mean);
  const auto cv = ad::constant(g, variance);
  const auto co = ad::constant(g, offset);
  const auto cs = ad::constant(g, scale);
  ad::Session s(g);
  const auto out = s.run({ad::nn::batch_normalization(cx, cm, cv, co, cs, epsilon),
                          ad::nn::batch_normalization(cx, cm, cv, {}, {}, epsilon),
                          ad::nn::batch_normalization(cx, cm, cv, co, {}, epsilon),
                          ad::nn::batch_normalization(cx, cm, cv, {}, cs, epsilon)});
  // tf.nn.batch_normalization in float32: inv = rsqrt(v + eps) [* scale];
  // y = x * inv + (offset - mean * inv), or x * inv - mean * inv without offset.
  for (int variant = 0; variant < 4; ++variant) {
    const bool has_offset = variant == 0 || variant == 2;
    const bool has_scale = variant == 0 || variant == 3;
    for (std::int64_t i = 0; i < 4; ++i) {
      for (std::int64_t c = 0; c < 3; ++c) {
        float inv =
            1.0f / std::sqrt(static_cast<float>(variance.flat(c)) + static_cast<float>(epsilon));
        if (has_scale) inv *= static_cast<float>(scale.flat(c));
        const auto xv = static_cast<float>(x.at({i, c}));
        const auto mv = static_cast<float>(mean.flat(c));
        const float expected = has_offset
                                   ? xv * inv + (static_cast<float>(offset.flat(c)) - mv * inv)
                                   : xv * inv - mv * inv;
        BOOST_TEST(static_cast<float>(out[static_cast<std::size_t>(variant)].at({i, c})) ==
                   expected);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(batch_normalization_matches_closed_form_with_broadcasting) {
  // NCHW-style parameters of shape [C, 1, 1] against x [N, C, H, W].
  const ad::Array x = random_array({2, 3, 2, 2}, 100, -3, 3);
  const ad::Array mean = random_array({3, 1, 1}, 101, -1, 1);
  const ad::Array variance = random_array({3, 1, 1}, 102, 0.1, 2);
  const ad::Array offset = random_array({3, 1, 1}, 103, -1, 1);
  const ad::Array scale = random_array({3, 1, 1}, 104, 0.5, 2);
  ad::Graph g;
  const auto y = ad::nn::batch_normalization(ad::constant(g, x), ad::constant(g, mean),
                                             ad::constant(g, variance), ad::constant(g, offset),
                                             ad::constant(g, scale), 1e-5);
  BOOST_TEST(y.shape() == x.shape());
  ad::Session s(g);
  const auto out = s.eval(y);
  std::vector<double> expected;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const std::int64_t c = (i / 4) % 3;
    expected.push_back((x.flat(i) - mean.flat(c)) / std::sqrt(variance.flat(c) + 1e-5) *
                           scale.flat(c) +
                       offset.flat(c));
  }
  BOOST_TEST(max_relative_error(out, expected) <= 1e-13);
}

BOOST_AUTO_TEST_CASE(batch_normalization_gradients_match_finite_differences) {
  const std::vector<ad::Array> values{random_array({4, 3}, 110, -2, 2),
                                      random_array({3}, 111, -1, 1), random_array({3}, 112, 0.5, 2),
                                      random_array({3}, 113, -1, 1),
                                      random_array({3}, 114, 0.5, 2)};
  check_gradient(
      [](const auto& x) { return ad::nn::batch_normalization(x[0], x[1], x[2], x[3], x[4], 1e-3); },
      values, 1e-6, true);
  check_gradient(
      [](const auto& x) { return ad::nn::batch_normalization(x[0], x[1], x[2], {}, {}, 1e-3); },
      {values[0], values[1], values[2]}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(batch_normalization_names_the_bad_argument) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  const auto mean = ad::placeholder(g, ad::DType::Float32, {4}, "mean");
  const auto variance = ad::placeholder(g, ad::DType::Float32, {4}, "variance");
  const auto offset64 = ad::placeholder(g, ad::DType::Float64, {4}, "offset64");
  const auto scale3 = ad::placeholder(g, ad::DType::Float32, {3}, "scale3");
  BOOST_CHECK_EXCEPTION((void)ad::nn::batch_normalization(x, mean, variance, offset64, {}, 1e-3),
                        ad::ValueError,
                        (MessageHas{{"batch_normalization", "offset", "'offset64:0'", "float64[4]",
                                     "float32[?, 4]", "ad::cast"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::batch_normalization(x, mean, variance, {}, scale3, 1e-3), ad::ValueError,
      (MessageHas{{"batch_normalization", "scale", "'scale3:0'", "[3]", "[?, 4]", "broadcast"}}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::batch_normalization(x, {}, variance, {}, {}, 1e-3),
                        ad::ValueError, (MessageHas{{"batch_normalization", "mean", "empty"}}));
}

BOOST_AUTO_TEST_CASE(softmax_rejects_bad_axis_and_scalars) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {2, 3}, "x");
  const auto s = ad::placeholder(g, ad::DType::Float32, {}, "s");
  BOOST_CHECK_EXCEPTION((void)ad::nn::softmax(x, 2), ad::ValueError,
                        (MessageHas{{"Softmax", "axis 2", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::log_softmax(s), ad::ValueError,
                        (MessageHas{{"LogSoftmax 'LogSoftmax'", "'s:0'", "scalar"}}));
}

BOOST_AUTO_TEST_SUITE_END()
