// TF1 losses as compositions of ops: per-element losses, TF's weight broadcasting rule, the five
// reductions with a safe division, and the LOSSES collection.
#include "layers/losses.h"

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/variable_scope.h"
#include "layers/internal/layer_util.h"

namespace ad::losses {

namespace {

using layers::detail::div_no_nan;

void require(const Tensor& t, const char* loss, const char* what) {
  if (!t) throw ValueError(str(loss, ": ", what, " is an empty Tensor"));
}

void require_floating(const Tensor& t, const char* loss, const char* what) {
  if (!is_floating(t.dtype())) {
    throw ValueError(str(loss, ": ", what, " '", t.name(), "' is ", t.dtype(),
                         "; expected float32 or float64 (use ad::cast)"));
  }
}

// The checks of a loss over labels and predictions of one shape: both given, predictions floating
// (the labels are cast to their dtype), shapes compatible.
void check_inputs(const Tensor& labels, const Tensor& predictions, const char* loss,
                  const char* labels_name, const char* predictions_name) {
  require(labels, loss, labels_name);
  require(predictions, loss, predictions_name);
  require_floating(predictions, loss, predictions_name);
  if (!labels.shape().is_compatible_with(predictions.shape())) {
    throw ValueError(str(loss, ": ", labels_name, " ", labels.shape(), " and ", predictions_name,
                         " ", predictions.shape(), " must have the same shape"));
  }
}

// The weights as a tensor of the losses' dtype that broadcasts to them without changing their
// shape (TF's assert_broadcastable).
Tensor weights_tensor(const Weights& weights, const Tensor& losses) {
  Graph& graph = losses.graph();
  if (const double* w = weights.if_number()) return scalar(graph, *w, losses.dtype());
  Tensor w = *weights.if_tensor();
  if (!w) throw ValueError("compute_weighted_loss: weights is an empty Tensor");
  if (w.dtype() != losses.dtype()) w = cast(w, losses.dtype());
  const Shape& ws = w.shape();
  const Shape& ls = losses.shape();
  if (ws.rank() == ls.rank() + 1 && ws[ws.rank() - 1] == 1) w = squeeze(w, {-1});
  const Shape& squeezed = w.shape();
  if (squeezed.rank() == 0) return w;
  bool ok = squeezed.rank() == ls.rank();
  for (int d = 0; ok && d < ls.rank(); ++d) {
    ok = squeezed[d] < 0 || ls[d] < 0 || squeezed[d] == 1 || squeezed[d] == ls[d];
  }
  if (!ok) {
    throw ValueError(str("compute_weighted_loss: weights '", w.name(), "' ", ws,
                         " cannot be broadcast to the losses ", ls,
                         " (weights must be a scalar or have the losses' rank with dims 1 or "
                         "equal to theirs)"));
  }
  return w;
}

// TF's _num_present: the number of loss elements whose (broadcast) weight is nonzero.
Tensor num_present(const Weights& weights, const Tensor& w, const Tensor& losses) {
  if (const double* number = weights.if_number(); number && *number != 0.0) {
    return cast(size(losses), losses.dtype());
  }
  const Tensor present = cast(not_equal(w, scalar_like(w, 0.0)), losses.dtype());
  return reduce_sum(present * ones_like(losses));
}

Tensor reduce_and_collect(const Tensor& losses, const Weights& weights, Reduction reduction,
                          const std::string& loss_collection) {
  const Tensor w = weights_tensor(weights, losses);
  const Tensor weighted = losses * w;
  Tensor loss;
  switch (reduction) {
    case Reduction::kNone:
      loss = weighted;
      break;
    case Reduction::kSum:
      loss = reduce_sum(weighted);
      break;
    case Reduction::kMean:
      loss = div_no_nan(reduce_sum(weighted), reduce_sum(ones_like(losses) * w));
      break;
    case Reduction::kSumOverBatchSize:
      loss = div_no_nan(reduce_sum(weighted), cast(size(losses), losses.dtype()));
      break;
    case Reduction::kSumByNonzeroWeights:
      loss = div_no_nan(reduce_sum(weighted), num_present(weights, w, losses));
      break;
  }
  loss = identity(loss, "value");
  if (!loss_collection.empty()) losses.graph().add_to_collection(loss_collection, loss);
  return loss;
}

const std::string& scope_or(const std::string& scope, const std::string& fallback) {
  return scope.empty() ? fallback : scope;
}

// `losses` weighted and reduced as a LossOptions or SmoothedLossOptions says.
template <class Options>
Tensor weighted(const Tensor& losses, const Options& o) {
  return reduce_and_collect(losses, o.weights, o.reduction, o.loss_collection);
}

void check_smoothing(double smoothing, const char* loss) {
  if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
    throw ValueError(str(loss, ": label_smoothing must be in [0, 1], got ", smoothing));
  }
}

}  // namespace

Tensor compute_weighted_loss(const Tensor& losses, const LossOptions& options) {
  require(losses, "compute_weighted_loss", "losses");
  require_floating(losses, "compute_weighted_loss", "losses");
  const NameScope scope(losses.graph(), scope_or(options.scope, "weighted_loss"));
  return weighted(losses, options);
}

Tensor sparse_softmax_cross_entropy(const Tensor& labels, const Tensor& logits,
                                    const LossOptions& options) {
  const char* loss = "sparse_softmax_cross_entropy";
  require(labels, loss, "labels");
  require(logits, loss, "logits");
  require_floating(logits, loss, "logits");
  const NameScope scope(logits.graph(),
                        scope_or(options.scope, "sparse_softmax_cross_entropy_loss"));
  Tensor ids = labels;
  const int rank = logits.shape().rank();
  if (rank < 2) {
    throw ValueError(str(loss, ": logits '", logits.name(), "' ", logits.shape(),
                         " must have rank >= 2 ([..., classes])"));
  }
  // TF squeezes labels of the logits' rank whose last dim is 1.
  if (ids.shape().rank() == rank && ids.shape()[rank - 1] == 1) ids = squeeze(ids, {-1});
  if (!is_integer(ids.dtype()) || ids.shape().rank() != rank - 1) {
    throw ValueError(
        str(loss, ": labels '", labels.name(), "' ", labels.dtype(), labels.shape(),
            " must be int64, int32 or uint8 class indices with one dim less than logits ",
            logits.shape()));
  }
  Shape leading = logits.shape();
  leading.erase(rank - 1);
  if (!ids.shape().is_compatible_with(leading)) {
    throw ValueError(str(loss, ": labels ", labels.shape(), " do not match logits ", logits.shape(),
                         " (expected labels ", leading, ")"));
  }
  Tensor losses;
  if (rank == 2) {
    losses = nn::sparse_softmax_cross_entropy_with_logits(ids, logits);
  } else {
    const std::int64_t classes = logits.shape()[rank - 1];
    if (classes < 0) {
      throw ValueError(str(loss, ": the number of classes of logits ", logits.shape(),
                           " must be known for rank > 2"));
    }
    const Tensor flat = nn::sparse_softmax_cross_entropy_with_logits(
        reshape(ids, Shape{-1}), reshape(logits, Shape{-1, classes}));
    losses = reshape(flat, shape(ids));
  }
  return weighted(losses, options);
}

Tensor softmax_cross_entropy(const Tensor& onehot_labels, const Tensor& logits,
                             const SmoothedLossOptions& options) {
  const char* loss = "softmax_cross_entropy";
  check_smoothing(options.label_smoothing, loss);
  check_inputs(onehot_labels, logits, loss, "onehot_labels", "logits");
  if (logits.shape().rank() < 1) {
    throw ValueError(str(loss, ": logits '", logits.name(), "' must have a classes axis"));
  }
  const NameScope scope(logits.graph(), scope_or(options.scope, "softmax_cross_entropy_loss"));
  Tensor labels = cast(onehot_labels, logits.dtype());
  if (options.label_smoothing > 0) {
    const Tensor classes =
        cast(slice(shape(logits), {logits.shape().rank() - 1}, {1}), logits.dtype());
    labels = labels * (1.0 - options.label_smoothing) + options.label_smoothing / classes;
  }
  labels = stop_gradient(labels, "labels_stop_gradient");
  return weighted(nn::softmax_cross_entropy_with_logits(labels, logits), options);
}

Tensor sigmoid_cross_entropy(const Tensor& multi_class_labels, const Tensor& logits,
                             const SmoothedLossOptions& options) {
  const char* loss = "sigmoid_cross_entropy";
  check_smoothing(options.label_smoothing, loss);
  check_inputs(multi_class_labels, logits, loss, "multi_class_labels", "logits");
  const NameScope scope(logits.graph(), scope_or(options.scope, "sigmoid_cross_entropy_loss"));
  Tensor labels = cast(multi_class_labels, logits.dtype());
  if (options.label_smoothing > 0) {
    labels = labels * (1.0 - options.label_smoothing) + 0.5 * options.label_smoothing;
  }
  return weighted(nn::sigmoid_cross_entropy_with_logits(labels, logits), options);
}

Tensor mean_squared_error(const Tensor& labels, const Tensor& predictions,
                          const LossOptions& options) {
  const char* loss = "mean_squared_error";
  check_inputs(labels, predictions, loss, "labels", "predictions");
  const NameScope scope(predictions.graph(), scope_or(options.scope, "mean_squared_error"));
  return weighted(squared_difference(predictions, cast(labels, predictions.dtype())), options);
}

Tensor absolute_difference(const Tensor& labels, const Tensor& predictions,
                           const LossOptions& options) {
  const char* loss = "absolute_difference";
  check_inputs(labels, predictions, loss, "labels", "predictions");
  const NameScope scope(predictions.graph(), scope_or(options.scope, "absolute_difference"));
  return weighted(abs(predictions - cast(labels, predictions.dtype())), options);
}

Tensor huber_loss(const Tensor& labels, const Tensor& predictions, const LossOptions& options,
                  double delta) {
  const char* loss = "huber_loss";
  check_inputs(labels, predictions, loss, "labels", "predictions");
  if (!(delta > 0)) throw ValueError(str(loss, ": delta must be positive, got ", delta));
  const NameScope scope(predictions.graph(), scope_or(options.scope, "huber_loss"));
  const Tensor error = abs(predictions - cast(labels, predictions.dtype()));
  // TF's formulation: quadratic = min(|e|, delta), linear = |e| - quadratic.
  const Tensor quadratic = minimum(error, scalar_like(error, delta));
  const Tensor linear = error - quadratic;
  return weighted(0.5 * square(quadratic) + delta * linear, options);
}

void add_loss(const Tensor& loss, std::string_view loss_collection) {
  require(loss, "add_loss", "loss");
  if (!loss_collection.empty()) loss.graph().add_to_collection(loss_collection, loss);
}

std::vector<Tensor> get_losses(const Graph& graph, std::string_view scope,
                               std::string_view loss_collection) {
  return graph.get_collection(loss_collection, scope);
}

std::vector<Tensor> get_regularization_losses(const Graph& graph, std::string_view scope) {
  return graph.get_collection(GraphKeys::REGULARIZATION_LOSSES, scope);
}

Tensor get_regularization_loss(Graph& graph, std::string_view scope) {
  return ad::get_regularization_loss(graph, scope);
}

Tensor get_total_loss(Graph& graph, bool add_regularization_losses, std::string_view scope) {
  std::vector<Tensor> all = get_losses(graph, scope);
  if (add_regularization_losses) {
    const auto regularization = get_regularization_losses(graph, scope);
    all.insert(all.end(), regularization.begin(), regularization.end());
  }
  if (all.empty()) {
    throw ValueError(str("get_total_loss: no losses found", scope.empty() ? "" : " in scope '",
                         scope, scope.empty() ? "" : "'",
                         "; build one with an ad::losses function (they add to LOSSES) or "
                         "ad::losses::add_loss"));
  }
  for (const auto& loss : all) {
    if (loss.shape().rank() != 0) {
      throw ValueError(str("get_total_loss: '", loss.name(), "' has shape ", loss.shape(),
                           "; losses must be scalars (was it built with Reduction::kNone?)"));
    }
    if (loss.dtype() != all.front().dtype()) {
      throw ValueError(str("get_total_loss: '", loss.name(), "' is ", loss.dtype(), " but '",
                           all.front().name(), "' is ", all.front().dtype(),
                           "; build the model and its losses in one dtype"));
    }
  }
  if (all.size() == 1) return identity(all.front(), "total_loss");
  return add_n(all, "total_loss");
}

}  // namespace ad::losses
