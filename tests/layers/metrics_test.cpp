// Batch metrics: accuracy (plain, weighted, cast predictions, empty batch), in_top_k with ties,
// out-of-range labels and non-finite scores, top_k_accuracy, error texts.
#include "layers/metrics.h"

#include <boost/test/unit_test.hpp>
#include <limits>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace M = ad::metrics;
using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(metrics_test)

BOOST_AUTO_TEST_CASE(accuracy_is_the_fraction_of_equal_entries) {
  ad::Graph g;
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto logits = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "logits");
  auto weights = ad::placeholder(g, ad::DType::Float32, {-1}, "weights");
  auto acc = M::accuracy(labels, ad::argmax(logits, 1));
  auto weighted = M::accuracy(labels, ad::argmax(logits, 1), weights);
  BOOST_TEST(acc.dtype() == ad::DType::Float32);
  BOOST_TEST(acc.shape() == ad::Shape{});
  ad::Session s(g);
  // Row argmaxes 0, 2, 1, 1, 0 against labels 0, 2, 2, 1, 1: three of five right.
  const auto l = ad::Array::from<std::int64_t>({0, 2, 2, 1, 1}, {5});
  const auto z = ad::Array::from<float>({3, 1, 0, 0, 1, 2, 0, 5, 1, 1, 2, 0, 9, 0, 0}, {5, 3});
  const auto w = ad::Array::from<float>({1, 2, 3, 0, 4}, {5});
  const auto r = s.run({acc, weighted}, {{labels, l}, {logits, z}, {weights, w}});
  BOOST_TEST(r[0].item<float>() == 0.6f);
  // Right: rows 0 (w 1), 1 (w 2), 3 (w 0) -> 3 / 10.
  BOOST_TEST(r[1].item<float>() == 0.3f, boost::test_tools::tolerance(1e-6f));
  // An empty batch gives 0, not NaN.
  const auto empty = s.eval(acc, {{labels, ad::Array::from<std::int64_t>({}, {0})},
                                  {logits, ad::Array::from<float>({}, {0, 3})}});
  BOOST_TEST(empty.item<float>() == 0.0f);
}

BOOST_AUTO_TEST_CASE(predictions_are_cast_to_the_labels_dtype) {
  ad::Graph g;
  auto labels = ad::constant(g, ad::Array::from<float>({1, 0, 1, 1}, {4}));
  auto predictions = ad::constant(g, ad::Array::from<std::int64_t>({1, 1, 1, 0}, {4}));
  ad::Session s(g);
  BOOST_TEST(s.eval(M::accuracy(labels, predictions)).item<float>() == 0.5f);
}

BOOST_AUTO_TEST_CASE(in_top_k_follows_tf) {
  ad::Graph g;
  const double inf = std::numeric_limits<double>::infinity();
  auto scores = ad::constant(g, ad::Array::from<double>({0.1, 0.5, 0.4, 0.0,  //
                                                         0.3, 0.3, 0.3, 0.1,  //
                                                         0.9, 0.2, 0.8, 0.7,  //
                                                         1.0, inf, 0.0, 0.0,  //
                                                         0.2, 0.1, 0.0, 0.3},
                                                        {5, 4}));
  auto labels = ad::constant(g, ad::Array::from<std::int64_t>({2, 1, 3, 0, 7}, {5}));
  ad::Session s(g);
  const auto k1 = s.eval(M::in_top_k(scores, labels, 1));
  const auto k2 = s.eval(M::in_top_k(scores, labels, 2));
  const auto k3 = s.eval(M::in_top_k(scores, labels, 3));
  // Row 0: 0.4 is second. Row 1: a three-way tie for the top counts as top 1. Row 2: 0.7 is
  // third. Row 3: a non-finite score gives false. Row 4: label 7 is out of range.
  const std::vector<bool> want1{false, true, false, false, false};
  const std::vector<bool> want2{true, true, false, false, false};
  const std::vector<bool> want3{true, true, true, false, false};
  for (std::size_t i = 0; i < 5; ++i) {
    BOOST_TEST(k1.data<bool>()[i] == want1[i]);
    BOOST_TEST(k2.data<bool>()[i] == want2[i]);
    BOOST_TEST(k3.data<bool>()[i] == want3[i]);
  }
  BOOST_TEST(s.eval(M::top_k_accuracy(labels, scores, 2)).item<float>() == 0.4f);
}

BOOST_AUTO_TEST_CASE(errors_name_the_metric_and_shapes) {
  ad::Graph g;
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto logits = ad::placeholder(g, ad::DType::Float32, {-1, 10}, "logits");
  BOOST_CHECK_EXCEPTION((void)M::accuracy(labels, logits), ad::ValueError,
                        (MessageHas{{"accuracy", "[?]", "[?, 10]", "argmax"}}));
  BOOST_CHECK_EXCEPTION((void)M::top_k_accuracy(logits, logits, 2), ad::ValueError,
                        (MessageHas{{"in_top_k 'top_k_accuracy/InTopK'", "int64"}}));
  BOOST_CHECK_EXCEPTION((void)M::in_top_k(logits, labels, 0), ad::ValueError,
                        (MessageHas{{"in_top_k", "k must be positive"}}));
}

BOOST_AUTO_TEST_SUITE_END()
