// tf.compat.v1.layers.max_pooling2d / average_pooling2d and their class forms. Pooling layers have
// no variables; they take a scope only to name their ops ("max_pooling2d", "max_pooling2d_1", ...).
#pragma once

#include <string>

#include "gradtape/autodiff/ops/pool.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/layers/conv2d.h"

namespace ad::layers {

// TF's arguments after pool_size and strides, in TF's order with TF's defaults.
struct Pooling2DOptions {
  PaddingOption padding = Padding::kValid;
  DataFormatOption data_format = DataFormat::kChannelsLast;
  std::string name{};
};

// A 2-D pooling layer: a `pool_size` window moved by `strides`, taking the maximum or the average.
class Pooling2D {
 public:
  enum class Kind { kMax, kAverage };
  // ValueError for non-positive sizes or a padding / data_format string TF would reject.
  Pooling2D(Kind kind, Size2 pool_size, Size2 strides, Pooling2DOptions options = {});

  // inputs [N, H, W, C] or [N, C, H, W] -> [N, OH, OW, C] or [N, C, OH, OW]; each call records
  // its ops under a new scope ("max_pooling2d_1/MaxPool").
  Tensor operator()(const Tensor& inputs) { return call(inputs, false); }
  Tensor apply(const Tensor& inputs) { return call(inputs, false); }
  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] const Pool2DParams& params() const { return params_; }

 private:
  friend Tensor max_pooling2d(const Tensor&, Size2, Size2, const Pooling2DOptions&);
  friend Tensor average_pooling2d(const Tensor&, Size2, Size2, const Pooling2DOptions&);
  Tensor call(const Tensor& inputs, bool functional);

  Kind kind_;
  Pool2DParams params_;
  Pooling2DOptions options_;
};

class MaxPooling2D : public Pooling2D {
 public:
  MaxPooling2D(Size2 pool_size, Size2 strides, Pooling2DOptions options = {})
      : Pooling2D(Kind::kMax, pool_size, strides, std::move(options)) {}
};

// With padding "same" each window averages only its in-bounds elements, as TF.
class AveragePooling2D : public Pooling2D {
 public:
  AveragePooling2D(Size2 pool_size, Size2 strides, Pooling2DOptions options = {})
      : Pooling2D(Kind::kAverage, pool_size, strides, std::move(options)) {}
};

// tf.compat.v1.layers.max_pooling2d(inputs, pool_size, strides, padding, data_format, name).
[[nodiscard]] Tensor max_pooling2d(const Tensor& inputs, Size2 pool_size, Size2 strides,
                                   const Pooling2DOptions& options = {});
// tf.compat.v1.layers.average_pooling2d (SAME padding is not counted in the averages).
[[nodiscard]] Tensor average_pooling2d(const Tensor& inputs, Size2 pool_size, Size2 strides,
                                       const Pooling2DOptions& options = {});

}  // namespace ad::layers
