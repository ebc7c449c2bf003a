// 2-D max and average pooling as ops (TF's MaxPool, AvgPool and their gradients), for channels_last
// and channels_first. Max pooling sends the gradient to the first maximum of each window; average
// pooling divides by the number of in-bounds elements (SAME padding is not counted, as in TF).
// Every gradient op has a gradient, so pooling can be differentiated twice.
#pragma once

#include <array>
#include <cstdint>

#include "gradtape/autodiff/ops/conv.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

struct Pool2DParams {
  std::array<std::int64_t, 2> ksize{2, 2};    // window (height, width)
  std::array<std::int64_t, 2> strides{2, 2};  // (height, width)
  Padding padding = Padding::kValid;
  DataFormat data_format = DataFormat::kChannelsLast;
};

namespace nn {

// input [N, H, W, C] (or [N, C, H, W]) -> [N, OH, OW, C] (or [N, C, OH, OW]) with the window
// arithmetic of conv_window (dilation 1); float32 or float64.
[[nodiscard]] Tensor max_pool2d(const Tensor& input, const Pool2DParams& params);
[[nodiscard]] Tensor avg_pool2d(const Tensor& input, const Pool2DParams& params);

// The gradient of max_pool2d: `grad` (shaped like its output) added at each window's first
// maximum of `input`; shaped like `input`.
[[nodiscard]] Tensor max_pool2d_grad(const Tensor& input, const Tensor& grad,
                                     const Pool2DParams& params);
// The gradient of max_pool2d_grad with respect to `grad`: for each window, `grad_grad` (shaped
// like `input`) at the window's first maximum; shaped like max_pool2d's output.
[[nodiscard]] Tensor max_pool2d_grad_grad(const Tensor& input, const Tensor& grad_grad,
                                          const Pool2DParams& params);
// The gradient of avg_pool2d for an input of shape `input_sizes` (1-D Int64 tensor of 4 entries,
// e.g. ad::shape(input)): each window's `grad` spread evenly over its in-bounds elements.
[[nodiscard]] Tensor avg_pool2d_grad(const Tensor& input_sizes, const Tensor& grad,
                                     const Pool2DParams& params);

}  // namespace nn
}  // namespace ad
