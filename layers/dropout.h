// tf.compat.v1.layers.dropout and its class form Dropout: in training, each element is kept with
// probability 1 - rate and scaled by 1 / (1 - rate); in inference the input passes unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "gradtape/autodiff/control.h"
#include "gradtape/autodiff/number_or_tensor.h"
#include "gradtape/autodiff/shape.h"
#include "gradtape/autodiff/tensor.h"

namespace ad::layers {

// A dropout rate: a number, or a scalar floating Tensor (a placeholder, a schedule) read at run
// time, as TF's rate argument accepts both.
using DropoutRate = NumberOrTensor;

// TF's arguments in TF's order with TF's defaults.
struct DropoutOptions {
  // The fraction dropped, in [0, 1). A Tensor rate is checked when it runs: InvalidArgumentError
  // naming the layer for a value outside [0, 1).
  DropoutRate rate = 0.5;
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
  // ValueError for a rate outside [0, 1), or a rate Tensor that is not a floating scalar.
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

// `dropout(h, {.rate = 0.3, .training = is_training})`: a new mask on every run in training;
// `.rate = keep_out` with a scalar placeholder takes the rate from each run's feed.
[[nodiscard]] Tensor dropout(const Tensor& inputs, const DropoutOptions& options = {});

}  // namespace ad::layers
