// Streaming metrics (TF1's tf.metrics, r2.4 metrics_impl.py): mean, accuracy and auc with local
// variables and update ops; the confusion counts of auc come from one ConfusionAtThresholds op.
#include <algorithm>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/variable.h"
#include "layers/internal/layer_util.h"
#include "layers/metrics.h"

namespace ad::metrics {

namespace {

using layers::detail::div_no_nan;

// A local float32 variable of zeros: "<current name scope><name>" (TF's metric_variable).
Variable metric_variable(Graph& graph, const std::string& scope, std::string_view name,
                         const Shape& shape) {
  VariableOptions options;
  options.shape = shape;
  options.trainable = false;
  options.collections = {std::string(GraphKeys::LOCAL_VARIABLES),
                         std::string(GraphKeys::METRIC_VARIABLES)};
  return Variable::create(graph, scope + std::string(name), options);
}

void add_to(Graph& graph, const std::vector<std::string>& keys, const Tensor& t) {
  for (const auto& key : keys) graph.add_to_collection(key, t);
}

// weights cast to float32 and broadcast to `like`'s shape (ValueError when they do not fit).
Tensor broadcast_weights(const char* metric, const Tensor& weights, const Tensor& like) {
  const Tensor w = cast(weights, DType::Float32) * ones_like(like);
  if (!w.shape().is_compatible_with(like.shape())) {
    throw ValueError(
        str(metric, ": weights ", weights.shape(), " do not broadcast to ", like.shape()));
  }
  return w;
}

MetricOp mean_in_scope(Graph& graph, const std::string& scope, const Tensor& values,
                       const MetricOptions& options) {
  const Variable total = metric_variable(graph, scope, "total", Shape{});
  const Variable count = metric_variable(graph, scope, "count", Shape{});
  Tensor v = values.dtype() == DType::Float32 ? values : cast(values, DType::Float32);
  Tensor num_values;
  if (options.weights) {
    const Tensor w = broadcast_weights("mean", options.weights, v);
    v = v * w;
    num_values = reduce_sum(w);
  } else {
    num_values = cast(size(v), DType::Float32);
  }
  const Tensor update_total = total.assign_add(reduce_sum(v));
  const Tensor update_count = count.assign_add(num_values);
  const auto ratio = [](const Tensor& t, const Tensor& c) {
    return div_no_nan(t, maximum(c, scalar_like(c, 0.0)));
  };
  MetricOp op{ratio(total.value(), count.value()), ratio(update_total, update_count)};
  op.value = identity(op.value, "value");
  op.update_op = identity(op.update_op, "update_op");
  add_to(graph, options.metrics_collections, op.value);
  add_to(graph, options.updates_collections, op.update_op);
  return op;
}

// ---- auc ---------------------------------------------------------------------------------------

struct ThresholdAttrs {
  std::vector<float> thresholds;
};

// Inputs: labels (float64, nonzero = positive), predictions (float32), weights (float32), all of
// one shape. Outputs: tp, fn, tn, fp per threshold (float32 [T]), each the sum of the weights of
// the elements in that cell, with "predicted positive" meaning prediction > threshold.
void confusion_kernel(KernelContext& ctx) {
  const Array& labels = ctx.input(0);
  const Array& predictions = ctx.input(1);
  const Array& weights = ctx.input(2);
  if (labels.shape() != predictions.shape() || weights.shape() != predictions.shape()) {
    ctx.fail(str("labels ", labels.shape(), ", predictions ", predictions.shape(), " and weights ",
                 weights.shape(), " must have one shape"));
  }
  const auto& thresholds = ctx.attrs<ThresholdAttrs>().thresholds;
  const auto p = predictions.data<float>();
  const auto y = labels.data<double>();
  const auto w = weights.data<float>();
  for (const float value : p) {
    if (!(value >= 0.0F && value <= 1.0F)) {
      ctx.fail(str("predictions must be in [0, 1], got ", value));
    }
  }
  const std::size_t n = thresholds.size();
  std::vector<double> cells(4 * n, 0.0);  // tp, fn, tn, fp, each [T]
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      const bool positive = y[i] != 0;
      const bool predicted = p[i] > thresholds[t];
      const std::size_t cell = positive ? (predicted ? 0 : 1) : (predicted ? 3 : 2);
      cells[cell * n + t] += w[i];
    }
  }
  for (int k = 0; k < 4; ++k) {
    Array& out = ctx.allocate_output(k, Shape{static_cast<std::int64_t>(n)});
    auto o = out.mutable_data<float>();
    for (std::size_t t = 0; t < n; ++t) o[t] = static_cast<float>(cells[k * n + t]);
  }
}

const OpDef kConfusionOp{.name = "ConfusionAtThresholds", .kernel = confusion_kernel};

std::vector<float> auc_thresholds(int num_thresholds) {
  constexpr double kEpsilon = 1e-7;
  std::vector<float> out{static_cast<float>(0.0 - kEpsilon)};
  for (int i = 0; i < num_thresholds - 2; ++i) {
    out.push_back(static_cast<float>((i + 1) * 1.0 / (num_thresholds - 1)));
  }
  out.push_back(static_cast<float>(1.0 + kEpsilon));
  return out;
}

Tensor area(const Tensor& tp, const Tensor& fn, const Tensor& tn, const Tensor& fp, AucCurve curve,
            std::int64_t n) {
  constexpr double kEpsilon = 1.0e-6;
  const Tensor recall = (tp + kEpsilon) / (tp + fn + kEpsilon);
  Tensor x;
  Tensor y;
  if (curve == AucCurve::kROC) {
    x = fp / (fp + tn + kEpsilon);
    y = recall;
  } else {
    x = recall;
    y = (tp + kEpsilon) / (tp + fp + kEpsilon);
  }
  const auto head = [n](const Tensor& t) { return slice(t, {0}, {n - 1}); };
  const auto tail = [n](const Tensor& t) { return slice(t, {1}, {n - 1}); };
  return reduce_sum((head(x) - tail(x)) * ((head(y) + tail(y)) / 2.0));
}

}  // namespace

MetricOp mean(const Tensor& values, const MetricOptions& options) {
  if (!values || values.is_op()) throw ValueError("mean: values is empty or an op");
  Graph& graph = values.graph();
  const NameScope scope(graph, options.name.empty() ? "mean" : options.name);
  return mean_in_scope(graph, scope.name(), values, options);
}

MetricOp streaming_accuracy(const Tensor& labels, const Tensor& predictions,
                            const MetricOptions& options) {
  if (!labels || !predictions) throw ValueError("accuracy: labels or predictions is empty");
  if (!labels.shape().is_compatible_with(predictions.shape())) {
    throw ValueError(str("accuracy: labels ", labels.shape(), " and predictions ",
                         predictions.shape(),
                         " must have the same shape (pass class indices, e.g. "
                         "ad::argmax(logits, 1), not the logits)"));
  }
  Graph& graph = labels.graph();
  const NameScope scope(graph, options.name.empty() ? "accuracy" : options.name);
  const Tensor same =
      predictions.dtype() == labels.dtype() ? predictions : cast(predictions, labels.dtype());
  const Tensor is_correct = cast(equal(same, labels), DType::Float32);
  return mean_in_scope(graph, scope.name(), is_correct, options);
}

MetricOp auc(const Tensor& labels, const Tensor& predictions, const AucOptions& options) {
  if (!labels || !predictions) throw ValueError("auc: labels or predictions is empty");
  if (!labels.shape().is_compatible_with(predictions.shape())) {
    throw ValueError(str("auc: labels ", labels.shape(), " and predictions ", predictions.shape(),
                         " must have the same shape"));
  }
  if (options.num_thresholds < 2) {
    throw ValueError(str("auc: num_thresholds must be at least 2, got ", options.num_thresholds));
  }
  Graph& graph = labels.graph();
  const NameScope scope(graph, options.name.empty() ? "auc" : options.name);
  const auto n = static_cast<std::int64_t>(options.num_thresholds);
  const char* names[] = {"true_positives", "false_negatives", "true_negatives", "false_positives"};
  std::vector<Variable> counts;
  for (const char* name : names) counts.push_back(metric_variable(graph, scope.name(), name, {n}));
  const Tensor p = cast(predictions, DType::Float32);
  const Tensor w = options.weights ? broadcast_weights("auc", options.weights, p) : ones_like(p);
  const Tensor inputs[] = {cast(labels, DType::Float64), p, w};
  const TensorSpec spec{DType::Float32, Shape{n}};
  const auto batch = graph.record(kConfusionOp, inputs, {spec, spec, spec, spec},
                                  ThresholdAttrs{auc_thresholds(options.num_thresholds)});
  std::vector<Tensor> updated;
  for (std::size_t k = 0; k < 4; ++k) updated.push_back(counts[k].assign_add(batch[k]));
  MetricOp op{area(counts[0].value(), counts[1].value(), counts[2].value(), counts[3].value(),
                   options.curve, n),
              area(updated[0], updated[1], updated[2], updated[3], options.curve, n)};
  op.value = identity(op.value, "value");
  op.update_op = identity(op.update_op, "update_op");
  add_to(graph, options.metrics_collections, op.value);
  add_to(graph, options.updates_collections, op.update_op);
  return op;
}

}  // namespace ad::metrics
