// Plain-loop float64 batch normalization for tests.
#include "tests/support/bn_reference.h"

#include <algorithm>
#include <cmath>

namespace ad::testing {

std::vector<double> to_doubles(const Array& a) {
  std::vector<double> out(static_cast<std::size_t>(a.size()));
  for (std::int64_t i = 0; i < a.size(); ++i) out[static_cast<std::size_t>(i)] = a.flat(i);
  return out;
}

Channels channels(const Shape& shape, const std::vector<int>& kept_axes) {
  Channels ch;
  const auto n = shape.num_elements();
  ch.of.resize(static_cast<std::size_t>(n));
  std::vector<std::int64_t> index(static_cast<std::size_t>(shape.rank()), 0);
  ch.count = 1;
  for (int a : kept_axes) ch.count *= shape[a];
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t c = 0;
    for (int d = 0; d < shape.rank(); ++d) {
      if (std::find(kept_axes.begin(), kept_axes.end(), d) != kept_axes.end()) {
        c = c * shape[d] + index[static_cast<std::size_t>(d)];
      }
    }
    ch.of[static_cast<std::size_t>(i)] = c;
    for (int d = shape.rank() - 1; d >= 0; --d) {
      if (++index[static_cast<std::size_t>(d)] < shape[d]) break;
      index[static_cast<std::size_t>(d)] = 0;
    }
  }
  ch.per_channel = ch.count == 0 ? 0 : n / ch.count;
  return ch;
}

ChannelStats channel_stats(const std::vector<double>& x, const Channels& ch) {
  ChannelStats s;
  s.mean.assign(static_cast<std::size_t>(ch.count), 0.0);
  s.variance.assign(static_cast<std::size_t>(ch.count), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) s.mean[static_cast<std::size_t>(ch.of[i])] += x[i];
  for (auto& m : s.mean) m /= static_cast<double>(ch.per_channel);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - s.mean[static_cast<std::size_t>(ch.of[i])];
    s.variance[static_cast<std::size_t>(ch.of[i])] += d * d;
  }
  for (auto& v : s.variance) v /= static_cast<double>(ch.per_channel);
  return s;
}

std::vector<double> normalize(const std::vector<double>& x, const Channels& ch,
                              const std::vector<double>& mean, const std::vector<double>& variance,
                              const std::vector<double>& gamma, const std::vector<double>& beta,
                              double epsilon) {
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(ch.of[i]);
    const double g = gamma.empty() ? 1.0 : gamma[c];
    const double b = beta.empty() ? 0.0 : beta[c];
    y[i] = (x[i] - mean[c]) / std::sqrt(variance[c] + epsilon) * g + b;
  }
  return y;
}

ReferenceGrads training_grads(const std::vector<double>& x, const std::vector<double>& dy,
                              const Channels& ch, const std::vector<double>& gamma,
                              double epsilon) {
  const auto stats = channel_stats(x, ch);
  const auto C = static_cast<std::size_t>(ch.count);
  const auto n = static_cast<double>(ch.per_channel);
  ReferenceGrads r;
  r.dgamma.assign(C, 0.0);
  r.dbeta.assign(C, 0.0);
  r.dx.resize(x.size());
  std::vector<double> s(C);
  for (std::size_t c = 0; c < C; ++c) s[c] = 1.0 / std::sqrt(stats.variance[c] + epsilon);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(ch.of[i]);
    r.dbeta[c] += dy[i];
    r.dgamma[c] += dy[i] * (x[i] - stats.mean[c]) * s[c];
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto c = static_cast<std::size_t>(ch.of[i]);
    const double g = gamma.empty() ? 1.0 : gamma[c];
    const double x_hat = (x[i] - stats.mean[c]) * s[c];
    r.dx[i] = g * s[c] * (dy[i] - r.dbeta[c] / n - x_hat * r.dgamma[c] / n);
  }
  return r;
}

double max_error(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = a.size() == b.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  }
  return worst;
}

}  // namespace ad::testing
