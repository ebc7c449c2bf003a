// ad::check_numerics: an identity that fails the run when its input holds NaN or Inf (TF's
// tf.debugging.check_numerics). For a check of every node at once, see SessionOptions.
#pragma once

#include <string_view>

#include "gradtape/autodiff/tensor.h"

namespace ad {

// Returns `x` unchanged (no copy); running it throws InvalidArgumentError
// "CheckNumerics '<node>': <message>: tensor had NaN values" (or Inf, or Inf and NaN) when x holds
// a NaN or an infinity. `x` must be Float32 or Float64 (ValueError otherwise). The gradient is
// check_numerics of the incoming gradient, with TF's message
// "Not a number (NaN) or infinity (Inf) values detected in gradient. <message>".
[[nodiscard]] Tensor check_numerics(const Tensor& x, std::string_view message,
                                    std::string_view name = {});

}  // namespace ad
