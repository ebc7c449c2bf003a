// Activation functions on float32/float64 tensors, with TF's names and semantics. Each records a
// node whose gradient is itself recorded as ops, so second derivatives work where the function is
// smooth. Included by elementwise.h.
#pragma once

#include "gradtape/autodiff/tensor.h"

namespace ad {

// max(x, 0).
[[nodiscard]] Tensor relu(const Tensor& x);
// 1 / (1 + exp(-x)), computed without overflow.
[[nodiscard]] Tensor sigmoid(const Tensor& x);
[[nodiscard]] Tensor tanh(const Tensor& x);
// log(1 + exp(x)), computed without overflow.
[[nodiscard]] Tensor softplus(const Tensor& x);
// x / (1 + |x|).
[[nodiscard]] Tensor softsign(const Tensor& x);

// x where x > 0, else alpha x (tf.nn.leaky_relu; alpha defaults to 0.2 as there).
[[nodiscard]] Tensor leaky_relu(const Tensor& x, double alpha = 0.2);
// x where x > 0, else exp(x) - 1 (tf.nn.elu).
[[nodiscard]] Tensor elu(const Tensor& x);
// 1.0507... * elu-like with alpha 1.6732... (tf.nn.selu, self-normalizing networks).
[[nodiscard]] Tensor selu(const Tensor& x);
// x P(X <= x) for a standard normal X (tf.nn.gelu): exact with erf by default, or TF's tanh
// approximation with `approximate`.
[[nodiscard]] Tensor gelu(const Tensor& x, bool approximate = false);
// x sigmoid(x) (tf.nn.swish, tf.nn.silu); silu is the same op.
[[nodiscard]] Tensor swish(const Tensor& x);
[[nodiscard]] Tensor silu(const Tensor& x);

}  // namespace ad
