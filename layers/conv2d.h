// tf.compat.v1.layers.conv2d and its class form Conv2D (kernel [kh, kw, in, filters], bias
// [filters]), plus the option types shared with the pooling layers: window sizes, padding and
// data format given as TF's strings or as enums.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/ops/conv.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/autodiff/variable_scope.h"
#include "gradtape/layers/dense.h"
#include "gradtape/layers/layer.h"

namespace ad::layers {

// (height, width), or one number for both: `.strides = 2` or `.strides = {2, 1}`.
class Size2 {
 public:
  Size2(std::int64_t both) : values_{both, both} {}  // NOLINT(google-explicit-constructor)
  Size2(std::int64_t height, std::int64_t width) : values_{height, width} {}
  [[nodiscard]] const std::array<std::int64_t, 2>& values() const { return values_; }
  [[nodiscard]] std::int64_t operator[](int i) const { return values_[static_cast<unsigned>(i)]; }

 private:
  std::array<std::int64_t, 2> values_;
};

// "valid" or "same" (any case, as TF), or ad::Padding.
class PaddingOption {
 public:
  PaddingOption(Padding padding) : value_(padding) {}  // NOLINT(google-explicit-constructor)
  // NOLINTNEXTLINE(google-explicit-constructor)
  PaddingOption(const char* text) : value_(std::string(text)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  PaddingOption(std::string text) : value_(std::move(text)) {}
  // The padding; ValueError naming `layer` for any other string.
  [[nodiscard]] Padding resolve(const std::string& layer) const;

 private:
  std::variant<Padding, std::string> value_;
};

// "channels_last" or "channels_first" (any case), or ad::DataFormat.
class DataFormatOption {
 public:
  DataFormatOption(DataFormat format) : value_(format) {}  // NOLINT(google-explicit-constructor)
  // NOLINTNEXTLINE(google-explicit-constructor)
  DataFormatOption(const char* text) : value_(std::string(text)) {}
  // NOLINTNEXTLINE(google-explicit-constructor)
  DataFormatOption(std::string text) : value_(std::move(text)) {}
  // The data format; ValueError naming `layer` for any other string.
  [[nodiscard]] DataFormat resolve(const std::string& layer) const;

 private:
  std::variant<DataFormat, std::string> value_;
};

// TF's arguments after kernel_size, in TF's order with TF's defaults.
struct Conv2DOptions {
  Size2 strides = 1;
  PaddingOption padding = Padding::kValid;
  DataFormatOption data_format = DataFormat::kChannelsLast;
  // Spacing of the kernel taps; unlike TF, strides and dilations above 1 may be combined.
  Size2 dilation_rate = 1;
  Activation activation{};
  bool use_bias = true;
  Initializer kernel_initializer{};  // empty: glorot_uniform, as TF1's get_variable
  Initializer bias_initializer{};    // empty: zeros
  Regularizer kernel_regularizer{};
  Regularizer bias_regularizer{};
  Regularizer activity_regularizer{};  // regularizer(output) / batch size
  Constraint kernel_constraint{};
  Constraint bias_constraint{};
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
};

class Conv2D : public Layer {
 public:
  // `filters` output channels, a `kernel_size` window; variables are created by the first call.
  Conv2D(std::int64_t filters, Size2 kernel_size, Conv2DOptions options = {});

  // inputs [N, H, W, C] (channels_last) or [N, C, H, W] (channels_first), C known ->
  // [N, OH, OW, filters] or [N, filters, OH, OW]. Later calls need the same C.
  Tensor operator()(const Tensor& inputs);
  Tensor apply(const Tensor& inputs) { return (*this)(inputs); }

  // `<scope>/kernel` [kh, kw, in, filters] and `<scope>/bias` [filters].
  [[nodiscard]] Variable kernel() const { return kernel_; }
  [[nodiscard]] Variable bias() const { return bias_; }
  // variables(), trainable_variables(), losses(), built() and scope_name(): see Layer.
  // The resolved convolution (strides, padding, data format, dilations) once built.
  [[nodiscard]] const Conv2DParams& params() const { return params_; }

 private:
  friend Tensor conv2d(const Tensor& inputs, std::int64_t filters, Size2 kernel_size,
                       const Conv2DOptions& options);
  void build(const Tensor& inputs) override;
  void check_input(const Tensor& inputs) const override;
  [[nodiscard]] std::vector<Variable> variable_slots() const override { return {kernel_, bias_}; }
  Tensor call(const Tensor& inputs);

  std::int64_t filters_;
  Size2 kernel_size_;
  Conv2DOptions options_;
  bool functional_ = false;
  Conv2DParams params_;
  std::int64_t in_channels_ = 0;
  DType dtype_ = DType::Float32;
  Variable kernel_, bias_;
};

// tf.compat.v1.layers.conv2d: a new layer per call with TF1 name/reuse semantics;
// `conv2d(x, 32, 3, {.padding = "same", .activation = ad::relu, .name = "conv1"})`.
[[nodiscard]] Tensor conv2d(const Tensor& inputs, std::int64_t filters, Size2 kernel_size,
                            const Conv2DOptions& options = {});

}  // namespace ad::layers
