// Neural-network ops: moments, the batch-normalization formula, softmax and cross-entropies.
#pragma once

#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad {

struct Moments {
  Tensor mean;
  Tensor variance;  // biased (divide by N)
};

// Mean and biased variance over `axes` (empty: all axes, as the reductions; negative axes count
// from the end). Two passes: the mean, then the variance around it, accumulated in double and
// corrected for the rounding of the mean, never E[x^2] - E[x]^2, so inputs with a large mean stay
// accurate (more so than TF's nn.moments, whose values it otherwise matches). Derivatives of every
// order are exact: unlike TF's stop_gradient(mean), which makes the second order inexact.
[[nodiscard]] Moments moments(const Tensor& x, const std::vector<int>& axes, bool keepdims = false);

// tf.norm's orders: 'euclidean' (2 for vectors, Frobenius for matrices), 1 and inf.
enum class NormOrder { kEuclidean, kOne, kInfinity };

// tf.norm: with `axes` empty, x's elements as one vector; with one axis, the vector norms along
// it; with two, (rows, columns), the matrix norm (1: largest column sum; inf: largest row sum).
// Float32 or float64. The euclidean norm's gradient at 0 is NaN, as TF's.
[[nodiscard]] Tensor norm(const Tensor& x, NormOrder ord = NormOrder::kEuclidean,
                          const std::vector<int>& axes = {}, bool keepdims = false);

namespace nn {

using ad::moments;

// TF's tf.nn.batch_normalization, with its exact op order:
//   inv = rsqrt(variance + epsilon); inv *= scale (if given);
//   y = x * inv + (offset - mean * inv)   (or x * inv - mean * inv without offset).
// mean, variance, offset and scale broadcast against x; offset and scale may be empty Tensors.
[[nodiscard]] Tensor batch_normalization(const Tensor& x, const Tensor& mean,
                                         const Tensor& variance, const Tensor& offset,
                                         const Tensor& scale, double epsilon);

[[nodiscard]] Tensor softmax(const Tensor& logits, int axis = -1);
[[nodiscard]] Tensor log_softmax(const Tensor& logits, int axis = -1);
// Per-example loss: labels Int64 [batch] (class indices), logits [batch, classes] -> [batch].
// A label outside [0, classes) is an InvalidArgumentError naming the row and the value.
[[nodiscard]] Tensor sparse_softmax_cross_entropy_with_logits(const Tensor& labels,
                                                              const Tensor& logits);
// labels: a probability distribution per row, same shape as logits -> [batch].
[[nodiscard]] Tensor softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits);
// Elementwise: max(x, 0) - x * z + log(1 + exp(-|x|)).
[[nodiscard]] Tensor sigmoid_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits);
// sum(x^2) / 2.
[[nodiscard]] Tensor l2_loss(const Tensor& x);
// tf.nn.l2_normalize: x * rsqrt(max(sum(x^2 over axes), epsilon)) (axes empty: all).
[[nodiscard]] Tensor l2_normalize(const Tensor& x, const std::vector<int>& axes,
                                  double epsilon = 1e-12);
[[nodiscard]] Tensor l2_normalize(const Tensor& x, int axis, double epsilon = 1e-12);

}  // namespace nn
}  // namespace ad
