// conv2d: option parsing (TF's strings), variables under the layer's scope, and the call as the
// Conv2D op plus a broadcast bias.
#include "layers/conv2d.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/elementwise.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string label(const std::string& scope) { return str("conv2d '", scope, "'"); }

// The label before the scope is known: the given name, if any.
std::string early_label(const std::string& name) {
  return name.empty() ? std::string("conv2d") : label(name);
}

}  // namespace

Padding PaddingOption::resolve(const std::string& layer) const {
  if (const auto* padding = std::get_if<Padding>(&value_)) return *padding;
  const std::string text = lower(std::get<std::string>(value_));
  if (text == "valid") return Padding::kValid;
  if (text == "same") return Padding::kSame;
  throw ValueError(str(layer, R"(: padding must be "valid" or "same", got ")",
                       std::get<std::string>(value_), "\""));
}

DataFormat DataFormatOption::resolve(const std::string& layer) const {
  if (const auto* format = std::get_if<DataFormat>(&value_)) return *format;
  const std::string text = lower(std::get<std::string>(value_));
  if (text == "channels_last") return DataFormat::kChannelsLast;
  if (text == "channels_first") return DataFormat::kChannelsFirst;
  throw ValueError(str(layer, R"(: data_format must be "channels_last" or "channels_first", got ")",
                       std::get<std::string>(value_), "\""));
}

Conv2D::Conv2D(std::int64_t filters, Size2 kernel_size, Conv2DOptions options)
    : filters_(filters), kernel_size_(kernel_size), options_(std::move(options)) {
  const std::string who = early_label(options_.name);
  if (filters_ <= 0) throw ValueError(str(who, ": filters must be positive, got ", filters_));
  auto positive = [&](const Size2& size, const char* what) {
    if (size[0] <= 0 || size[1] <= 0) {
      throw ValueError(
          str(who, ": ", what, " must be positive, got (", size[0], ", ", size[1], ")"));
    }
  };
  positive(kernel_size_, "kernel_size");
  positive(options_.strides, "strides");
  positive(options_.dilation_rate, "dilation_rate");
  params_ = {.strides = options_.strides.values(),
             .padding = options_.padding.resolve(who),
             .data_format = options_.data_format.resolve(who),
             .dilations = options_.dilation_rate.values()};
}

void Conv2D::build(const Tensor& inputs) {
  const std::string who = label(scope_name());
  const Shape& shape = inputs.shape();
  const bool nchw = params_.data_format == DataFormat::kChannelsFirst;
  const char* layout = nchw ? "[batch, channels, height, width] for channels_first"
                            : "[batch, height, width, channels] for channels_last";
  if (shape.rank() != 4) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has rank ", shape.rank(), " (shape ",
                         shape, "); expected rank 4 (", layout, ")"));
  }
  detail::require_floating(inputs, who);
  in_channels_ = shape[nchw ? 1 : 3];
  if (in_channels_ < 0) {
    throw ValueError(str(who, ": the channel dimension of the input must be known, but '",
                         inputs.name(), "' has shape ", shape, " (", layout, ")"));
  }
  for (int d = 0; d < 2; ++d) {
    const std::int64_t size = shape[nchw ? 2 + d : 1 + d];
    if (size < 0) continue;
    const ConvWindow window = conv_window(size, kernel_size_[d], params_.strides[d],
                                          params_.dilations[d], params_.padding);
    if (window.out == 0 && size > 0) {
      throw ValueError(str(who, ": the ", kernel_size_[0], "x", kernel_size_[1],
                           " kernel (dilation_rate ", params_.dilations[0], "x",
                           params_.dilations[1], ") does not fit the input ", shape,
                           " with padding valid; use padding \"same\" or a smaller kernel"));
    }
  }
  dtype_ = inputs.dtype();
  detail::KernelAndBias variables = detail::create_kernel_and_bias(
      inputs.graph(), Shape{kernel_size_[0], kernel_size_[1], in_channels_, filters_}, dtype_,
      options_);
  kernel_ = variables.kernel;
  bias_ = variables.bias;
  mutable_losses() = std::move(variables.losses);
}

void Conv2D::check_input(const Tensor& inputs) const {
  const std::string who = label(scope_name());
  const Shape& shape = inputs.shape();
  if (shape.rank() != 4) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has rank ", shape.rank(), " (shape ",
                         shape, "); expected rank 4"));
  }
  const bool nchw = params_.data_format == DataFormat::kChannelsFirst;
  const std::int64_t channels = shape[nchw ? 1 : 3];
  if (channels != in_channels_) {
    throw ValueError(str(who, ": input has ", channels, " channels on axis ", nchw ? 1 : 3,
                         " (shape ", shape, ", ", to_string(params_.data_format),
                         "), but the layer was built for ", in_channels_, " (kernel ",
                         kernel_.shape(), ")"));
  }
  detail::require_built_dtype(inputs, dtype_, who);
}

Tensor Conv2D::operator()(const Tensor& inputs) {
  if (!inputs) throw ValueError(str(early_label(options_.name), ": the input is an empty Tensor"));
  return call_in_scope(
      inputs,
      [&](std::optional<VariableScope>& scope, Graph& graph) {
        detail::open_layer_scope(scope, graph, functional_, options_.name, options_.reuse,
                                 "conv2d");
      },
      [&] { return call(inputs); });
}

Tensor Conv2D::call(const Tensor& inputs) {
  Tensor outputs = nn::conv2d(inputs, kernel_.value(), params_);
  if (bias_) {
    const Tensor bias = bias_.value();
    outputs = params_.data_format == DataFormat::kChannelsFirst
                  ? outputs + reshape(bias, Shape{filters_, 1, 1})
                  : outputs + bias;
  }
  if (options_.activation) outputs = options_.activation(outputs);
  if (options_.activity_regularizer) {
    mutable_losses().push_back(detail::add_activity_loss(options_.activity_regularizer, outputs));
  }
  return outputs;
}

Tensor conv2d(const Tensor& inputs, std::int64_t filters, Size2 kernel_size,
              const Conv2DOptions& options) {
  Conv2D layer(filters, kernel_size, options);
  layer.functional_ = true;
  return layer(inputs);
}

}  // namespace ad::layers
