// Streaming metrics (TF1's tf.metrics): mean, accuracy and auc accumulated over batches against
// closed forms, their local variables and local_variables_initializer, weights, collections.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/metrics.h"

namespace {

double run_float(ad::Session& s, const ad::Tensor& t, const ad::FeedDict& feeds = {}) {
  return s.run({t}, feeds)[0].item<float>();
}

ad::Array floats(const std::vector<float>& v) {
  return ad::Array::from(v, {static_cast<std::int64_t>(v.size())});
}

ad::Array ints(const std::vector<std::int64_t>& v) {
  return ad::Array::from(v, {static_cast<std::int64_t>(v.size())});
}

// TF's auc formula (trapezoidal, 200 thresholds), computed here in double from its definition.
double reference_auc(const std::vector<float>& p, const std::vector<std::int64_t>& y, bool roc) {
  const int n = 200;
  std::vector<float> thresholds{static_cast<float>(-1e-7)};
  for (int i = 0; i < n - 2; ++i) thresholds.push_back(static_cast<float>((i + 1) * 1.0 / (n - 1)));
  thresholds.push_back(static_cast<float>(1.0 + 1e-7));
  std::vector<double> x(n);
  std::vector<double> r(n);
  for (int t = 0; t < n; ++t) {
    double tp = 0, fn = 0, tn = 0, fp = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const bool predicted = p[i] > thresholds[static_cast<std::size_t>(t)];
      if (y[i] != 0) {
        (predicted ? tp : fn) += 1;
      } else {
        (predicted ? fp : tn) += 1;
      }
    }
    const double recall = (tp + 1e-6) / (tp + fn + 1e-6);
    if (roc) {
      x[static_cast<std::size_t>(t)] = fp / (fp + tn + 1e-6);
      r[static_cast<std::size_t>(t)] = recall;
    } else {
      x[static_cast<std::size_t>(t)] = recall;
      r[static_cast<std::size_t>(t)] = (tp + 1e-6) / (tp + fp + 1e-6);
    }
  }
  double area = 0;
  for (std::size_t t = 0; t + 1 < x.size(); ++t) area += (x[t] - x[t + 1]) * (r[t] + r[t + 1]) / 2;
  return area;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(streaming_metrics_test)

BOOST_AUTO_TEST_CASE(mean_accumulates_over_batches) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {-1}, "x");
  const auto [value, update] = ad::metrics::mean(x);
  ad::Session s(g);
  s.run({ad::local_variables_initializer(g)});
  BOOST_TEST(run_float(s, value) == 0.0);  // no data yet: 0, not NaN
  BOOST_TEST(run_float(s, update, {{x, floats({1, 2, 3})}}) == 2.0);
  BOOST_TEST(run_float(s, update, {{x, floats({4, 5})}}) == 3.0);  // (1+2+3+4+5) / 5
  BOOST_TEST(run_float(s, value) == 3.0);
  BOOST_TEST(run_float(s, value) == 3.0);  // reading does not accumulate
  s.run({ad::local_variables_initializer(g)});
  BOOST_TEST(run_float(s, value) == 0.0);  // reset
  BOOST_TEST(run_float(s, update, {{x, floats({10})}}) == 10.0);
}

BOOST_AUTO_TEST_CASE(weighted_mean_is_sum_of_w_times_x_over_sum_of_w) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {3}, "x");
  const auto w = ad::placeholder(g, ad::DType::Float32, {3}, "w");
  const auto [value, update] = ad::metrics::mean(x, {.weights = w, .name = "weighted"});
  ad::Session s(g);
  s.run({ad::local_variables_initializer(g)});
  s.run({update}, {{x, floats({1, 2, 3})}, {w, floats({1, 0, 3})}});
  s.run({update}, {{x, floats({4, 5, 6})}, {w, floats({0.5F, 0.5F, 0})}});
  // (1 + 9 + 2 + 2.5) / (1 + 3 + 0.5 + 0.5) = 14.5 / 5
  BOOST_TEST(run_float(s, value) == 2.9, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(g.find_variable("weighted/total") >= 0);
  BOOST_TEST(g.find_variable("weighted/count") >= 0);
}

BOOST_AUTO_TEST_CASE(streaming_accuracy_counts_matches_over_all_batches) {
  ad::Graph g;
  const auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  const auto predictions = ad::placeholder(g, ad::DType::Int64, {-1}, "predictions");
  const auto [accuracy, update] = ad::metrics::streaming_accuracy(
      labels, predictions,
      {.metrics_collections = {"my_metrics"}, .updates_collections = {"my_updates"}});
  ad::Session s(g);
  s.run({ad::local_variables_initializer(g)});
  s.run({update}, {{labels, ints({1, 2, 3, 4})}, {predictions, ints({1, 2, 0, 0})}});  // 2 of 4
  const double after = run_float(s, update, {{labels, ints({5, 6})}, {predictions, ints({5, 6})}});
  BOOST_TEST(after == 4.0 / 6.0, boost::test_tools::tolerance(1e-7));
  BOOST_TEST(run_float(s, accuracy) == 4.0 / 6.0, boost::test_tools::tolerance(1e-7));
  // Local, not global: not initialized by global_variables_initializer, not saved by a Saver.
  BOOST_TEST(ad::local_variables(g).size() == 2U);
  BOOST_TEST(ad::local_variables(g)[0].name() == "accuracy/total");
  BOOST_TEST(ad::local_variables(g)[1].name() == "accuracy/count");
  BOOST_TEST(ad::global_variables(g).empty());
  BOOST_TEST(ad::variables_in_collection(g, ad::GraphKeys::METRIC_VARIABLES).size() == 2U);
  BOOST_TEST((g.get_collection("my_metrics").front() == accuracy));
  BOOST_TEST((g.get_collection("my_updates").front() == update));
  // A second metric gets its own scope.
  const auto second = ad::metrics::streaming_accuracy(labels, predictions);
  BOOST_TEST(g.find_variable("accuracy_1/total") >= 0);
  (void)second;
}

BOOST_AUTO_TEST_CASE(auc_follows_tf_thresholded_formula_and_approaches_the_exact_area) {
  const std::vector<float> p1 = {0.1F, 0.4F, 0.35F};
  const std::vector<std::int64_t> y1 = {0, 0, 1};
  const std::vector<float> p2 = {0.8F, 0.05F, 0.62F, 0.3F, 0.9F};
  const std::vector<std::int64_t> y2 = {1, 0, 0, 1, 1};
  std::vector<float> p = p1;
  p.insert(p.end(), p2.begin(), p2.end());
  std::vector<std::int64_t> y = y1;
  y.insert(y.end(), y2.begin(), y2.end());
  for (const bool roc : {true, false}) {
    ad::Graph g;
    const auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
    const auto predictions = ad::placeholder(g, ad::DType::Float32, {-1}, "predictions");
    const auto [value, update] =
        ad::metrics::auc(labels, predictions,
                         {.curve = roc ? ad::metrics::AucCurve::kROC : ad::metrics::AucCurve::kPR});
    ad::Session s(g);
    s.run({ad::local_variables_initializer(g)});
    s.run({update}, {{labels, ints(y1)}, {predictions, floats(p1)}});
    s.run({update}, {{labels, ints(y2)}, {predictions, floats(p2)}});
    const double got = run_float(s, value);
    BOOST_TEST(got == reference_auc(p, y, roc), boost::test_tools::tolerance(1e-5));
    if (roc) {
      // Exact ROC AUC: the share of (positive, negative) pairs ranked correctly, 12 of 15 here
      // (positives 0.35, 0.8, 0.3, 0.9 against negatives 0.1, 0.4, 0.05, 0.62).
      double correct = 0;
      double pairs = 0;
      for (std::size_t i = 0; i < p.size(); ++i) {
        for (std::size_t j = 0; j < p.size(); ++j) {
          if (y[i] == 1 && y[j] == 0) {
            pairs += 1;
            correct += p[i] > p[j] ? 1 : 0;
          }
        }
      }
      BOOST_TEST(got == correct / pairs, boost::test_tools::tolerance(1e-3));
    }
    BOOST_TEST(ad::local_variables(g).size() == 4U);
    BOOST_TEST(ad::local_variables(g)[0].name() == "auc/true_positives");
    BOOST_CHECK_THROW(s.run({update}, {{labels, ints({1})}, {predictions, floats({1.5F})}}),
                      ad::InvalidArgumentError);
  }
}

BOOST_AUTO_TEST_CASE(rejects_mismatched_shapes) {
  ad::Graph g;
  const auto a = ad::placeholder(g, ad::DType::Int64, {4}, "a");
  const auto b = ad::placeholder(g, ad::DType::Int64, {4, 10}, "b");
  BOOST_CHECK_THROW((void)ad::metrics::streaming_accuracy(a, b), ad::ValueError);
  BOOST_CHECK_THROW((void)ad::metrics::auc(a, b), ad::ValueError);
  BOOST_CHECK_THROW((void)ad::metrics::auc(a, a, {.num_thresholds = 1}), ad::ValueError);
}

BOOST_AUTO_TEST_SUITE_END()
