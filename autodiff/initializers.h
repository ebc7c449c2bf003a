// Variable initializers (TF r2.4 semantics): callables (Graph&, shape, dtype) -> Tensor that
// record the ops computing a variable's initial value. Random ones are seeded by the graph seed
// (Graph::set_seed) and an op seed, so a program gives bitwise identical values on every run.
#pragma once

#include <cstdint>
#include <optional>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/graph.h"

namespace ad::initializers {

// All zeros / all ones, any dtype.
[[nodiscard]] Initializer zeros();
[[nodiscard]] Initializer ones();
// Every element `value` (converted to the variable's dtype).
[[nodiscard]] Initializer constant(double value);
// `value` converted to the variable's dtype: either one element (filled everywhere) or exactly
// as many elements as the variable, taken in row-major order (as TF's constant initializer).
[[nodiscard]] Initializer constant(const Array& value);

// Normal values with this mean and standard deviation; floating dtypes only.
[[nodiscard]] Initializer random_normal(double mean = 0.0, double stddev = 1.0,
                                        std::optional<std::int64_t> seed = {});
// Normal values redrawn until they lie within two standard deviations of the mean.
[[nodiscard]] Initializer truncated_normal(double mean = 0.0, double stddev = 1.0,
                                           std::optional<std::int64_t> seed = {});
// Uniform values in [minval, maxval).
[[nodiscard]] Initializer random_uniform(double minval = 0.0, double maxval = 1.0,
                                         std::optional<std::int64_t> seed = {});

// Which fan divides the scale: fan_in, fan_out or their mean. For a shape of rank >= 2 the
// receptive field is the product of all dims but the last two, fan_in = shape[-2] * field and
// fan_out = shape[-1] * field; rank 1 has fan_in = fan_out = shape[0]; a scalar has 1.
enum class FanMode { kFanIn, kFanOut, kFanAvg };
enum class Distribution { kTruncatedNormal, kUntruncatedNormal, kUniform };

// TF's VarianceScaling: with n = max(1, fan), values of variance scale / n drawn from a normal
// truncated at two standard deviations (stddev sqrt(scale / n) / 0.87962566103423978, which
// corrects for the truncation), an untruncated normal (stddev sqrt(scale / n)), or a uniform in
// [-limit, limit) with limit = sqrt(3 * scale / n). ValueError when scale <= 0.
[[nodiscard]] Initializer variance_scaling(
    double scale = 1.0, FanMode mode = FanMode::kFanIn,
    Distribution distribution = Distribution::kTruncatedNormal,
    std::optional<std::int64_t> seed = {});
// Glorot/Xavier: variance_scaling(1, fan_avg, uniform) -> limit sqrt(6 / (fan_in + fan_out)).
[[nodiscard]] Initializer glorot_uniform(std::optional<std::int64_t> seed = {});
// variance_scaling(1, fan_avg, truncated normal).
[[nodiscard]] Initializer glorot_normal(std::optional<std::int64_t> seed = {});
// He: variance_scaling(2, fan_in, truncated normal).
[[nodiscard]] Initializer he_normal(std::optional<std::int64_t> seed = {});
// variance_scaling(2, fan_in, uniform) -> limit sqrt(6 / fan_in).
[[nodiscard]] Initializer he_uniform(std::optional<std::int64_t> seed = {});
// LeCun: variance_scaling(1, fan_in, truncated normal).
[[nodiscard]] Initializer lecun_normal(std::optional<std::int64_t> seed = {});
// variance_scaling(1, fan_in, uniform) -> limit sqrt(3 / fan_in).
[[nodiscard]] Initializer lecun_uniform(std::optional<std::int64_t> seed = {});

// TF's Orthogonal: the shape is viewed as a matrix [product of all dims but the last, last]; its
// rows (or columns, whichever are fewer) are orthonormal, times `gain`. Computed from the QR
// decomposition of a standard normal matrix, with signs fixed so the distribution is uniform.
// Needs rank >= 2 (ValueError otherwise).
[[nodiscard]] Initializer orthogonal(double gain = 1.0, std::optional<std::int64_t> seed = {});

// The (fan_in, fan_out) that variance_scaling uses for `shape`.
struct Fans {
  double fan_in = 1.0;
  double fan_out = 1.0;
};
[[nodiscard]] Fans compute_fans(const Shape& shape);

}  // namespace ad::initializers
