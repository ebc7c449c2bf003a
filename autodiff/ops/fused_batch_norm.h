// fused_batch_norm_grad: batch normalization's hand-written gradient, one op computing dx, dscale
// and doffset in two passes over x and dy. It has a gradient of its own, so double backward works.
#pragma once

#include <utility>
#include <vector>

#include "gradtape/autodiff/tensor.h"

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

namespace nn {

struct FusedBatchNorm {
  Tensor y;
  Tensor mean;      // training: the batch mean (keepdims shape); inference: the given mean
  Tensor variance;  // training: the biased batch variance; inference: the given variance
};

// Batch normalization whose forward pass is the composition of exact_moments and
// nn::batch_normalization, and whose gradient is fused_batch_norm_grad (like
// tf.nn.fused_batch_norm, but for any rank and any set of reduction axes). `scale` and `offset` may
// be empty Tensors; they, `mean` and `variance` have x's shape with the reduction axes set to 1. In
// training `mean` and `variance` are ignored (pass empty Tensors) and the batch statistics are
// returned; in inference they are the population statistics and receive gradients too.
[[nodiscard]] FusedBatchNorm fused_batch_norm(const Tensor& x, const Tensor& scale,
                                              const Tensor& offset, const Tensor& mean,
                                              const Tensor& variance, double epsilon,
                                              const std::vector<int>& reduction_axes,
                                              bool training);

// Mean and biased variance over `axes` (keepdims), built without stop_gradient so derivatives of
// every order are exact. Values and first-order gradients equal ad::moments'.
[[nodiscard]] std::pair<Tensor, Tensor> exact_moments(const Tensor& x,
                                                      const std::vector<int>& axes);

// The same statistics as one node: a single read of x from memory (two passes over cache-sized
// chunks, merged with Chan's formula in double). Its gradient is recorded as ops.
[[nodiscard]] std::pair<Tensor, Tensor> channel_moments(const Tensor& x,
                                                        const std::vector<int>& axes);

// x * scale + shift with per-channel scale and shift (shaped like x with `axes` set to 1), as one
// node: one read of x and one write of the result.
[[nodiscard]] Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift,
                                    const std::vector<int>& axes);

}  // namespace nn
}  // namespace ad
