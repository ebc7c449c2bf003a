// Pooling layers: option parsing, the layer's scope, and the MaxPool / AvgPool ops.
#include "layers/pooling.h"

#include <optional>

#include "autodiff/error.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

const char* base_name(Pooling2D::Kind kind) {
  return kind == Pooling2D::Kind::kAverage ? "average_pooling2d" : "max_pooling2d";
}

std::string label(Pooling2D::Kind kind, const std::string& name) {
  return name.empty() ? std::string(base_name(kind)) : str(base_name(kind), " '", name, "'");
}

}  // namespace

Pooling2D::Pooling2D(Kind kind, Size2 pool_size, Size2 strides, Pooling2DOptions options)
    : kind_(kind), options_(std::move(options)) {
  const std::string who = label(kind_, options_.name);
  if (pool_size[0] <= 0 || pool_size[1] <= 0 || strides[0] <= 0 || strides[1] <= 0) {
    throw ValueError(str(who, ": pool_size and strides must be positive, got pool_size (",
                         pool_size[0], ", ", pool_size[1], ") and strides (", strides[0], ", ",
                         strides[1], ")"));
  }
  params_ = {.ksize = pool_size.values(),
             .strides = strides.values(),
             .padding = options_.padding.resolve(who),
             .data_format = options_.data_format.resolve(who)};
}

Tensor Pooling2D::call(const Tensor& inputs, bool functional) {
  if (!inputs) throw ValueError(str(label(kind_, options_.name), ": the input is an empty Tensor"));
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), functional, options_.name, Reuse::kFalse,
                           base_name(kind_));
  const std::string who = label(kind_, scope->name());
  const Shape& shape = inputs.shape();
  if (shape.rank() != 4) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has rank ", shape.rank(), " (shape ",
                         shape, "); expected rank 4 (",
                         params_.data_format == DataFormat::kChannelsFirst
                             ? "[batch, channels, height, width] for channels_first"
                             : "[batch, height, width, channels] for channels_last",
                         ")"));
  }
  detail::require_floating(inputs, who);
  try {
    return kind_ == Kind::kAverage ? nn::avg_pool2d(inputs, params_)
                                   : nn::max_pool2d(inputs, params_);
  } catch (const ValueError& e) {
    throw ValueError(str(who, ": ", e.what()));
  }
}

Tensor max_pooling2d(const Tensor& inputs, Size2 pool_size, Size2 strides,
                     const Pooling2DOptions& options) {
  return Pooling2D(Pooling2D::Kind::kMax, pool_size, strides, options).call(inputs, true);
}

Tensor average_pooling2d(const Tensor& inputs, Size2 pool_size, Size2 strides,
                         const Pooling2DOptions& options) {
  return Pooling2D(Pooling2D::Kind::kAverage, pool_size, strides, options).call(inputs, true);
}

}  // namespace ad::layers
