// tf.compat.v1.layers.dropout and its class form Dropout: in training, each element is kept with
// probability 1 - rate and scaled by 1 / (1 - rate); in inference the input passes unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gradtape/autodiff/control.h"
#include "gradtape/autodiff/shape.h"
#include "gradtape/autodiff/tensor.h"

namespace ad::layers {

// TF's arguments in TF's order with TF's defaults.
struct DropoutOptions {
  double rate = 0.5;  // the fraction dropped, in [0, 1)
  // Shape of the keep/drop mask, broadcast against the input (e.g. {-1, 1, 1, -1} drops whole
  // channels of NHWC images); -1 entries take the input's dim (TF's None). Unset: the input's
  // shape.
  std::optional<Shape> noise_shape{};
  std::optional<std::int64_t> seed{};  // the op seed; with the graph seed it fixes the masks
  Predicate training = false;          // a bool, or a boolean scalar Tensor fed at run time
  std::string name{};
};

class Dropout {
 public:
  // ValueError for a rate outside [0, 1).
  explicit Dropout(DropoutOptions options = {});
  // Dropout of `inputs` (float32 or float64, any shape); `training` overrides the options' one.
  Tensor operator()(const Tensor& inputs, std::optional<Predicate> training = {});
  Tensor apply(const Tensor& inputs, std::optional<Predicate> training = {}) {
    return (*this)(inputs, training);
  }

 private:
  friend Tensor dropout(const Tensor& inputs, const DropoutOptions& options);
  Tensor call(const Tensor& inputs, const Predicate& training, bool functional);
  DropoutOptions options_;
};

// `dropout(h, {.rate = 0.3, .training = is_training})`: a new mask on every run in training.
[[nodiscard]] Tensor dropout(const Tensor& inputs, const DropoutOptions& options = {});

}  // namespace ad::layers
