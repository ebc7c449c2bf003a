// fused_batch_norm_grad: batch normalization's hand-written gradient, one op computing dx, dscale
// and doffset in two passes over x and dy. It has a gradient of its own, so double backward works.
#pragma once

#include <vector>

#include "autodiff/tensor.h"

namespace ad {

struct FusedBatchNormGrad {
  Tensor dx;
  Tensor dscale;   // shaped like `mean` (the keepdims statistics shape)
  Tensor doffset;  // likewise
};

// The gradient of y = (x - mean) * rsqrt(variance + epsilon) * scale + offset, where mean and
// variance are per-channel statistics of x over `reduction_axes` (shape: x's shape with those axes
// set to 1).
// - training: mean and variance are the batch statistics (biased variance) of x itself, and dx
//   accounts for their dependence on x;
// - inference: they are population statistics (inputs independent of x).
// `scale` may be an empty Tensor (no scale). Inputs are Float32 or Float64 of one dtype.
[[nodiscard]] FusedBatchNormGrad fused_batch_norm_grad(const Tensor& dy, const Tensor& x,
                                                       const Tensor& scale, const Tensor& mean,
                                                       const Tensor& variance, double epsilon,
                                                       const std::vector<int>& reduction_axes,
                                                       bool training);

}  // namespace ad
