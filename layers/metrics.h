// Batch metrics: accuracy and top-k accuracy as plain ops evaluated on the batch fed at run time.
// Unlike TF1's tf.metrics.accuracy these are not streaming: there are no local variables and no
// update op; average over batches yourself (or weight by batch size) to get a data-set figure.
#pragma once

#include <cstdint>

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

}  // namespace ad::metrics
