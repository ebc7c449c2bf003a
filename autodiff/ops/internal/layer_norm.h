// Internal: layer normalization's fused ops (layer_norm.cpp), which nn::normalize takes for its
// most common layout, and the statistics' direct gradient terms both fused paths share.
#pragma once

#include <vector>

#include "gradtape/autodiff/ops/normalization.h"

namespace ad::detail {

// nn::normalize with the hand-written gradient when the reduction axes are the trailing dims of x
// (known sizes) and scale/offset, if given, hold one value per normalized position (shaped like
// those dims, possibly with leading 1s); an empty Tensor for any other layout.
[[nodiscard]] Tensor fused_layer_norm(const nn::NormalizeInputs& inputs, double epsilon,
                                      const std::vector<int>& axes);

// `grads` with grads[0] (x's gradient) increased by the terms of gradients arriving at the
// statistics of x themselves (`dmean`, `dvariance`, either may be empty), `mean` being their
// keepdims value: d mean/dx = 1/N, d var/dx = 2 (x - mean)/N.
[[nodiscard]] std::vector<Tensor> add_statistics_gradient(const Tensor& x, const Tensor& mean,
                                                          const Tensor& dmean,
                                                          const Tensor& dvariance,
                                                          std::vector<Tensor> grads);

}  // namespace ad::detail
