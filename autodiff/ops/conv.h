// 2-D convolution as ops (TF's Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter), lowered to GEMM
// through im2col/col2im. Each op's gradient is recorded with the other two, so convolutions can be
// differentiated any number of times. Also the window arithmetic shared with pooling.
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string_view>

#include "gradtape/autodiff/shape.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

// TF's "VALID" (no padding; windows lie inside the input) and "SAME" (output = ceil(in / stride);
// zero padding split with the larger half after).
enum class Padding { kValid, kSame };
// channels_last is NHWC ([batch, height, width, channels]); channels_first is NCHW.
enum class DataFormat { kChannelsLast, kChannelsFirst };

// "valid" / "same", "channels_last" / "channels_first".
[[nodiscard]] std::string_view to_string(Padding padding);
[[nodiscard]] std::string_view to_string(DataFormat format);
std::ostream& operator<<(std::ostream& out, Padding padding);
std::ostream& operator<<(std::ostream& out, DataFormat format);

// One spatial dimension of a sliding window: output size and padding before the first element.
struct ConvWindow {
  std::int64_t out = 0;
  std::int64_t pad_before = 0;
  std::int64_t pad_after = 0;
};
// With the effective size k' = (size - 1) * dilation + 1: VALID gives out = (in - k') / stride + 1
// (0 when k' > in); SAME gives out = ceil(in / stride) and TF's
// pad_total = max((out - 1) * stride + k' - in, 0), pad_before = pad_total / 2.
[[nodiscard]] ConvWindow conv_window(std::int64_t in, std::int64_t size, std::int64_t stride,
                                     std::int64_t dilation, Padding padding);

struct Conv2DParams {
  std::array<std::int64_t, 2> strides{1, 1};  // (height, width)
  Padding padding = Padding::kValid;
  DataFormat data_format = DataFormat::kChannelsLast;
  std::array<std::int64_t, 2> dilations{1, 1};  // (height, width)
};

namespace nn {

// Cross-correlation as TF's conv2d: input [N, H, W, C] (or [N, C, H, W] for channels_first),
// filter [KH, KW, C, F] -> [N, OH, OW, F] (or [N, F, OH, OW]); float32 or float64. Unlike TF,
// strides and dilations above 1 may be combined.
[[nodiscard]] Tensor conv2d(const Tensor& input, const Tensor& filter,
                            const Conv2DParams& params = {});
// The gradient of conv2d with respect to its input: `input_sizes` is the input's shape as a 1-D
// Int64 tensor of 4 entries (e.g. ad::shape(input)), `out_backprop` is shaped like conv2d's output.
[[nodiscard]] Tensor conv2d_backprop_input(const Tensor& input_sizes, const Tensor& filter,
                                           const Tensor& out_backprop,
                                           const Conv2DParams& params = {});
// The gradient of conv2d with respect to its filter, of shape `filter_sizes` [KH, KW, C, F].
[[nodiscard]] Tensor conv2d_backprop_filter(const Tensor& input, const Shape& filter_sizes,
                                            const Tensor& out_backprop,
                                            const Conv2DParams& params = {});

}  // namespace nn
}  // namespace ad
