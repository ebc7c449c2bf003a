// global_moments on 1, 2 and 3 ranks with unequal and empty shares of the global batch: values
// against a float64 two-pass over the whole batch (computed here from the same data), the
// float32 large-mean case (mean 1000, std 0.1) within 1e-3 of float64, bitwise agreement across
// ranks, and first and second order gradients against central differences.
#include "distributed/moments.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "distributed/communicator.h"
#include "tests/distributed/distributed_test_util.h"

namespace dist = ad::distributed;
using ad::testing::MpiFixture;
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

namespace {

constexpr std::int64_t kChannels = 3;

// Rank r's rows of the global batch: 5, 3, 0, 5, 3, 0, ... (first row offset from the lower ranks).
std::int64_t rows_of(int r) { return r % 3 == 0 ? 5 : (r % 3 == 1 ? 3 : 0); }
std::int64_t first_row_of(int r) {
  std::int64_t first = 0;
  for (int k = 0; k < r; ++k) first += rows_of(k);
  return first;
}
std::int64_t global_rows() { return first_row_of(dist::size()); }

// The global batch [rows, kChannels]: channel c has mean `center` + c and spread `spread`.
std::vector<double> global_batch(double center, double spread) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v;
  for (std::int64_t i = 0; i < global_rows() * kChannels; ++i) {
    v.push_back(center + static_cast<double>(i % kChannels) + spread * normal(rng));
  }
  return v;
}

ad::Array rows_for(int r, const std::vector<double>& all, ad::DType dtype) {
  const auto begin = all.begin() + first_row_of(r) * kChannels;
  const std::vector<double> mine(begin, begin + rows_of(r) * kChannels);
  return ad::Array::from(mine, {rows_of(r), kChannels}).astype(dtype);
}

// Float64 two-pass mean and biased variance of channel c, over the values as rounded to `dtype`.
std::pair<double, double> reference(const std::vector<double>& all, std::int64_t c,
                                    ad::DType dtype) {
  const auto rounded = [&](double v) {
    return dtype == ad::DType::Float32 ? static_cast<double>(static_cast<float>(v)) : v;
  };
  const auto n = static_cast<double>(global_rows());
  double sum = 0;
  for (std::int64_t i = c; i < global_rows() * kChannels; i += kChannels) sum += rounded(all[i]);
  const double mean = sum / n;
  double m2 = 0;
  for (std::int64_t i = c; i < global_rows() * kChannels; i += kChannels) {
    m2 += (rounded(all[i]) - mean) * (rounded(all[i]) - mean);
  }
  return {mean, m2 / n};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(moments_test)

BOOST_AUTO_TEST_CASE(global_statistics_equal_a_two_pass_over_the_whole_batch) {
  for (const auto dtype : {ad::DType::Float64, ad::DType::Float32}) {
    // Float32 with mean 1000 and std 0.1: TF 2.4's E[x^2] - E[x]^2 gets this variance wrong by a
    // factor of about 10; the merged two-pass statistics must stay within 1e-3 of float64.
    const double center = dtype == ad::DType::Float32 ? 1000.0 : 2.0;
    const double spread = dtype == ad::DType::Float32 ? 0.1 : 1.5;
    const double tol = dtype == ad::DType::Float32 ? 1e-3 : 1e-12;
    const auto all = global_batch(center, spread);
    ad::Graph graph;
    const auto x = ad::placeholder(graph, dtype, {-1, kChannels}, "x");
    const auto stats = dist::global_moments(x, {0});
    ad::Session session(graph);
    const auto out =
        session.run({stats.mean, stats.variance}, {{x, rows_for(dist::rank(), all, dtype)}});
    BOOST_TEST(out[0].shape() == ad::Shape{kChannels});
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const auto [mean, variance] = reference(all, c, dtype);
      BOOST_TEST(std::abs(out[0].flat(c) - mean) <=
                     (dtype == ad::DType::Float32 ? 1e-7 : 1e-13) * std::abs(mean),
                 "channel " << c << " mean " << out[0].flat(c) << " vs " << mean);
      BOOST_TEST(std::abs(out[1].flat(c) - variance) <= tol * variance,
                 dtype << " channel " << c << " variance " << out[1].flat(c) << " vs " << variance);
    }
    BOOST_TEST(ad::testing::bitwise_same_on_every_rank(out[0]));
    BOOST_TEST(ad::testing::bitwise_same_on_every_rank(out[1]));
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_central_differences_with_an_empty_rank) {
  // A batch-norm-like objective: y = (x - mean) * rsqrt(var + eps), summed with rank-dependent
  // weights; its gradient reaches x through the local values and through the global statistics.
  const auto all = global_batch(0.5, 1.0);
  for (const bool second_order : {false, true}) {
    BOOST_TEST_CONTEXT((second_order ? "second order" : "first order")) {
      ad::Graph graph;
      const auto x = ad::placeholder(graph, ad::DType::Float64, {-1, kChannels}, "x");
      const auto stats = dist::global_moments(x, {0}, /*keepdims=*/true);
      const auto y = (x - stats.mean) * ad::rsqrt(stats.variance + 1e-3);
      auto objective = ad::reduce_sum(y * y * ad::tanh(x) * (1.0 + 0.3 * dist::rank()) + y);
      if (second_order) {
        const auto g = ad::gradients({objective}, {x})[0];
        objective = ad::reduce_sum(g * ad::tanh(x));
      }
      (void)ad::testing::check_global_gradient(
          graph, x, objective, [&](int r) { return rows_for(r, all, ad::DType::Float64); });
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
