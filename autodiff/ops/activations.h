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

}  // namespace ad
