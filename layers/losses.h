// tf.compat.v1.losses: per-example losses weighted and reduced as TF1 does (default
// SUM_BY_NONZERO_WEIGHTS), each added to the LOSSES collection, and the totals that gather them
// with the regularization losses. Losses are computed in the dtype of the logits/predictions,
// float32 or float64. TF1 weights and reduces in float32 and casts back to the input dtype, and its
// mean_squared_error, absolute_difference and huber_loss cast predictions and labels to float32
// first (a float32 loss even for float64 predictions); for float32 models the two agree.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/number_or_tensor.h"
#include "gradtape/autodiff/tensor.h"

namespace ad::losses {

// TF's tf.compat.v1.losses.Reduction.
enum class Reduction {
  kNone,                 // the weighted per-element losses, unreduced
  kSum,                  // sum of the weighted losses
  kMean,                 // sum of the weighted losses / sum of the weights (broadcast to losses)
  kSumOverBatchSize,     // sum of the weighted losses / number of loss elements
  kSumByNonzeroWeights,  // sum of the weighted losses / number of nonzero weights (TF's default)
};

// A number, or a Tensor of rank 0 or of the losses' rank whose dims are 1 or equal to the losses'
// (TF's broadcast rule for weights; [batch, 1] weights for [batch] losses are squeezed).
using Weights = NumberOrTensor;

// TF's arguments after the labels and predictions, in TF's order with TF's defaults.
struct LossOptions {
  Weights weights = 1.0;
  std::string scope{};  // name scope of the ops (default: the loss's name)
  std::string loss_collection{GraphKeys::LOSSES};  // empty: not added to any collection
  Reduction reduction = Reduction::kSumByNonzeroWeights;
};

// The same with TF's label_smoothing (after weights, as in TF).
struct SmoothedLossOptions {
  Weights weights = 1.0;
  double label_smoothing = 0.0;
  std::string scope{};
  std::string loss_collection{GraphKeys::LOSSES};
  Reduction reduction = Reduction::kSumByNonzeroWeights;
};

// Weights and reduces per-element `losses` (float32 or float64) as described by `reduction`;
// empty denominators give 0 (TF's div_no_nan). Adds the result to `loss_collection`.
[[nodiscard]] Tensor compute_weighted_loss(const Tensor& losses, const LossOptions& options = {});

// labels Int64 [d0, ..., dk] class indices (or [d0, ..., dk, 1]), logits [d0, ..., dk, classes].
[[nodiscard]] Tensor sparse_softmax_cross_entropy(const Tensor& labels, const Tensor& logits,
                                                  const LossOptions& options = {});
// onehot_labels shaped like logits [..., classes]; with label_smoothing s the labels become
// labels * (1 - s) + s / classes. No gradient flows into the labels (TF1 stops it).
[[nodiscard]] Tensor softmax_cross_entropy(const Tensor& onehot_labels, const Tensor& logits,
                                           const SmoothedLossOptions& options = {});
// Elementwise logistic loss; labels shaped like logits; label_smoothing s gives
// labels * (1 - s) + s / 2.
[[nodiscard]] Tensor sigmoid_cross_entropy(const Tensor& multi_class_labels, const Tensor& logits,
                                           const SmoothedLossOptions& options = {});
// (predictions - labels)^2, elementwise, then weighted and reduced.
[[nodiscard]] Tensor mean_squared_error(const Tensor& labels, const Tensor& predictions,
                                        const LossOptions& options = {});
// |predictions - labels|.
[[nodiscard]] Tensor absolute_difference(const Tensor& labels, const Tensor& predictions,
                                         const LossOptions& options = {});
// TF's huber_loss: 0.5 e^2 where |e| <= delta, else delta * (|e| - 0.5 delta), e = predictions -
// labels.
[[nodiscard]] Tensor huber_loss(const Tensor& labels, const Tensor& predictions,
                                const LossOptions& options = {}, double delta = 1.0);

// Adds `loss` to `loss_collection` (TF's add_loss).
void add_loss(const Tensor& loss, std::string_view loss_collection = GraphKeys::LOSSES);
// The entries of `loss_collection` whose names start with `scope`.
[[nodiscard]] std::vector<Tensor> get_losses(const Graph& graph, std::string_view scope = {},
                                             std::string_view loss_collection = GraphKeys::LOSSES);
// The REGULARIZATION_LOSSES entries whose names start with `scope`.
[[nodiscard]] std::vector<Tensor> get_regularization_losses(const Graph& graph,
                                                            std::string_view scope = {});
// Their sum, "total_regularization_loss" (a float32 0 when there are none).
[[nodiscard]] Tensor get_regularization_loss(Graph& graph, std::string_view scope = {});
// The sum of the LOSSES (and, by default, the regularization losses) as "total_loss".
// ValueError when there are no losses, or they are not scalars of one dtype.
[[nodiscard]] Tensor get_total_loss(Graph& graph, bool add_regularization_losses = true,
                                    std::string_view scope = {});

}  // namespace ad::losses
