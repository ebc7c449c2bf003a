// tf.compat.v1.layers.flatten: [batch, d1, ..., dk] -> [batch, d1 * ... * dk], keeping the batch
// dim (which may be unknown).
#pragma once

#include <string>

#include "gradtape/autodiff/tensor.h"
#include "gradtape/layers/conv2d.h"

namespace ad::layers {

struct FlattenOptions {
  std::string name{};
  // channels_first inputs are moved to channels_last order before flattening (as Keras does), so
  // a model flattens its features in the same order for both formats.
  DataFormatOption data_format = DataFormat::kChannelsLast;
};

// inputs of rank >= 1 (rank 1 becomes [batch, 1]); any dtype. Static trailing dims give a static
// feature count; otherwise it is computed at run time.
[[nodiscard]] Tensor flatten(const Tensor& inputs, const FlattenOptions& options = {});

}  // namespace ad::layers
