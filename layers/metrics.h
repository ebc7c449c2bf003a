// Metrics. Batch metrics: accuracy and top-k accuracy as plain ops evaluated on the batch fed at
// run time. Streaming metrics, TF1's tf.metrics (r2.4 metrics_impl.py): streaming_accuracy, mean
// and auc return a (value, update_op) pair backed by local variables (LOCAL_VARIABLES and
// METRIC_VARIABLES, not saved, set by ad::local_variables_initializer): each run of update_op adds
// a batch to the running totals and returns the updated metric, value reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad::metrics {

// The (weighted) fraction of elements where predictions == labels, as a float32 scalar: labels and
// predictions of one shape (predictions are cast to the labels' dtype, as TF does), e.g. Int64
// class indices `accuracy(labels, ad::argmax(logits, 1))`. `weights` (optional) broadcasts to the
// labels; the result is sum(w * correct) / sum(w), 0 when the weights sum to 0 (or the batch is
// empty). Not TF's streaming metric: it returns this batch's value only.
[[nodiscard]] Tensor accuracy(const Tensor& labels, const Tensor& predictions,
                              const Tensor& weights = {});

// TF's in_top_k: for labels Int64 [batch] and predictions [batch, classes] (float32 or float64),
// Bool [batch], true when fewer than k classes score strictly higher than the label's class (ties
// at the boundary count as in the top k). A label outside [0, classes) or a row with a non-finite
// score gives false, as in TF.
[[nodiscard]] Tensor in_top_k(const Tensor& predictions, const Tensor& labels, std::int64_t k);

// The fraction of rows whose label is in the top k predictions (float32 scalar); with k = 1 it
// equals accuracy(labels, argmax(predictions, 1)) except that ties for the maximum count as hits.
[[nodiscard]] Tensor top_k_accuracy(const Tensor& labels, const Tensor& predictions,
                                    std::int64_t k = 5);

// A streaming metric: `value` reads the metric of everything accumulated so far; `update_op`
// accumulates the batch fed with it and returns the updated metric.
// auto [acc, acc_update] = ad::metrics::streaming_accuracy(labels, predictions);
struct MetricOp {
  Tensor value;
  Tensor update_op;
};

struct MetricOptions {
  Tensor weights{};  // broadcastable to the values (labels); default 1; 0 masks an element
  std::vector<std::string> metrics_collections{};  // collections `value` is added to
  std::vector<std::string> updates_collections{};  // collections `update_op` is added to
  std::string name{};  // the name scope of the local variables; default the metric's name
};

// TF1's tf.metrics.mean: total += sum(w * values), count += sum(w); the metric is
// total / count (0 while count is 0). Local float32 variables "<scope>/total" and "<scope>/count".
[[nodiscard]] MetricOp mean(const Tensor& values, const MetricOptions& options = {});

// TF1's tf.metrics.accuracy (named so beside the batch accuracy above): the streaming mean of
// predictions == labels (predictions cast to the labels' dtype; shapes must agree), with its local
// variables in the scope "accuracy".
[[nodiscard]] MetricOp streaming_accuracy(const Tensor& labels, const Tensor& predictions,
                                          const MetricOptions& options = {});

enum class AucCurve { kROC, kPR };

struct AucOptions {
  Tensor weights{};
  int num_thresholds = 200;
  AucCurve curve = AucCurve::kROC;
  std::vector<std::string> metrics_collections{};
  std::vector<std::string> updates_collections{};
  std::string name{};
};

// TF1's tf.metrics.auc with summation_method "trapezoidal": predictions in [0, 1] (an
// InvalidArgumentError otherwise), labels any dtype (nonzero is positive); confusion counts at
// num_thresholds thresholds (-1e-7, i/(n-1) for i = 1..n-2, 1 + 1e-7) accumulated in the local
// variables true_positives, false_negatives, true_negatives, false_positives; the area under the
// ROC (x = fp / (fp + tn + 1e-6), y = (tp + 1e-6) / (tp + fn + 1e-6)) or PR curve by the trapezoid
// rule over the thresholds, exactly as TF approximates it.
[[nodiscard]] MetricOp auc(const Tensor& labels, const Tensor& predictions,
                           const AucOptions& options = {});

}  // namespace ad::metrics
