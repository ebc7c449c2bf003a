// An independent float64 reference for batch normalization, written with plain loops straight from
// the spec's formulas, for the batch_normalization tests.
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/shape.h"

namespace ad::testing {

// The values of any array as float64.
std::vector<double> to_doubles(const Array& a);

// Per-channel view of an array: the channel of each element is its index over `kept_axes`.
struct Channels {
  std::vector<std::int64_t> of;  // channel of each element
  std::int64_t count = 0;        // number of channels
  std::int64_t per_channel = 0;  // elements per channel (N)
};
Channels channels(const Shape& shape, const std::vector<int>& kept_axes);

// Mean and biased variance per channel.
struct ChannelStats {
  std::vector<double> mean;
  std::vector<double> variance;
};
ChannelStats channel_stats(const std::vector<double>& x, const Channels& ch);

// (x - mean) / sqrt(variance + epsilon) * gamma + beta per element (gamma/beta empty: 1/0).
std::vector<double> normalize(const std::vector<double>& x, const Channels& ch,
                              const std::vector<double>& mean, const std::vector<double>& variance,
                              const std::vector<double>& gamma, const std::vector<double>& beta,
                              double epsilon);

// Training-mode gradients by the closed form (spec §9.1) with loops.
struct ReferenceGrads {
  std::vector<double> dx, dgamma, dbeta;
};
ReferenceGrads training_grads(const std::vector<double>& x, const std::vector<double>& dy,
                              const Channels& ch, const std::vector<double>& gamma, double epsilon);

// Largest |a - b| / max(1, |b|).
double max_error(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace ad::testing
