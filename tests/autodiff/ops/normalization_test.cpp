// normalization: the mergeable statistic. Per-shard (count, mean, M2) merged with Chan's formula
// equals the statistics of the whole batch (closed forms in long double), in both dtypes and
// several layouts; the merge pipeline is differentiable to second order (central differences);
// an empty shard merges as nothing.
#include "autodiff/ops/normalization.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/bn_reference.h"
#include "tests/support/gradient_check.h"

using ad::testing::random_array;
using ad::testing::random_normal;

namespace {

struct Reference {
  std::vector<double> mean;
  std::vector<double> variance;
};

// Mean and biased variance of each channel over `axes` of x (whose other axes are the channels),
// from explicit multi-indices, in long double.
Reference closed_form(const ad::Array& x, const std::vector<int>& axes) {
  const ad::Shape& shape = x.shape();
  const int rank = shape.rank();
  std::vector<std::int64_t> stride(static_cast<std::size_t>(rank), 0);
  std::int64_t channels = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (std::find(axes.begin(), axes.end(), d) != axes.end()) continue;
    stride[static_cast<std::size_t>(d)] = channels;
    channels *= shape[d];
  }
  std::vector<std::vector<long double>> groups(static_cast<std::size_t>(channels));
  for (std::int64_t flat = 0; flat < x.size(); ++flat) {
    std::int64_t rest = flat;
    std::int64_t c = 0;
    for (int d = rank - 1; d >= 0; --d) {
      c += (rest % shape[d]) * stride[static_cast<std::size_t>(d)];
      rest /= shape[d];
    }
    groups[static_cast<std::size_t>(c)].push_back(x.flat(flat));
  }
  Reference r;
  for (const auto& g : groups) {
    long double sum = 0;
    for (const long double v : g) sum += v;
    const long double mean = sum / static_cast<long double>(g.size());
    long double squares = 0;
    for (const long double v : g) squares += (v - mean) * (v - mean);
    r.mean.push_back(static_cast<double>(mean));
    r.variance.push_back(static_cast<double>(squares / static_cast<long double>(g.size())));
  }
  return r;
}

// x split along axis 0 into shards of the given sizes; each shard's statistics, stacked and merged.
std::pair<ad::Tensor, ad::Tensor> sharded_moments(const ad::Tensor& x,
                                                  const std::vector<std::int64_t>& sizes,
                                                  const std::vector<int>& axes) {
  std::vector<ad::Tensor> counts;
  std::vector<ad::Tensor> means;
  std::vector<ad::Tensor> m2s;
  std::int64_t begin = 0;
  for (const std::int64_t n : sizes) {
    std::vector<std::int64_t> start(static_cast<std::size_t>(x.shape().rank()), 0);
    std::vector<std::int64_t> extent = x.shape().to_vector();
    start[0] = begin;
    extent[0] = n;
    begin += n;
    const auto s = ad::nn::moment_statistics(ad::slice(x, start, extent), axes);
    counts.push_back(s.count);
    means.push_back(s.mean);
    m2s.push_back(s.m2);
  }
  const auto merged = ad::nn::merge_moment_statistics(
      {ad::stack(counts, 0), ad::stack(means, 0), ad::stack(m2s, 0)});
  return ad::nn::moments_from_statistics(merged, x.dtype());
}

void check_close(const ad::Array& got, const std::vector<double>& want, double tolerance) {
  BOOST_REQUIRE_EQUAL(got.size(), static_cast<std::int64_t>(want.size()));
  for (std::int64_t i = 0; i < got.size(); ++i) {
    const double w = want[static_cast<std::size_t>(i)];
    BOOST_TEST(std::abs(got.flat(i) - w) <= tolerance * std::max(1.0, std::abs(w)),
               "element " << i << ": got " << got.flat(i) << ", want " << w);
  }
}

// nn::normalize (layer, group and instance norm's op) in several layouts and ranks: x, reduction
// axes, and the shape scale and offset broadcast from.
struct NormalizeCase {
  ad::Shape shape;
  std::vector<int> axes;
  ad::Shape param_shape;
};

const std::vector<NormalizeCase>& normalize_cases() {
  static const std::vector<NormalizeCase> all{
      {{4, 6}, {1}, {6}},                             // layer norm, last axis
      {{3, 4, 5}, {1, 2}, {4, 5}},                    // layer norm, last two axes
      {{3, 4, 5}, {1}, {1, 4, 1}},                    // layer norm over a middle axis
      {{2, 3, 2, 3, 3}, {2, 3, 4}, {1, 3, 2, 1, 1}},  // group norm NCHW as [N, G, C/G, H, W]
      {{2, 3, 3, 2, 2}, {1, 2, 4}, {1, 1, 1, 2, 2}},  // group norm NHWC as [N, H, W, G, C/G]
      {{2, 3, 4, 4}, {2, 3}, {1, 3, 1, 1}},           // instance norm NCHW
  };
  return all;
}

ad::Tensor normalize_of(const NormalizeCase& c, const std::vector<ad::Tensor>& in, bool fused) {
  return ad::nn::normalize({.x = in[0], .scale = in[1], .offset = in[2]}, 1e-3, c.axes, fused);
}

std::vector<ad::Array> normalize_values(const NormalizeCase& c, std::uint64_t seed) {
  return {random_array(c.shape, seed, -2.0, 2.0), random_array(c.param_shape, seed + 1, 0.5, 1.5),
          random_array(c.param_shape, seed + 2, -1.0, 1.0)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(normalization_test)

BOOST_AUTO_TEST_CASE(merged_shard_statistics_equal_the_whole_batch) {
  struct Case {
    ad::Shape shape;
    std::vector<int> axes;
  };
  const std::vector<Case> cases{
      {{12, 5}, {0}}, {{9, 3, 4, 4}, {0, 2, 3}}, {{10, 4, 3, 2}, {0, 1, 2}}, {{7, 6, 3}, {0, 2}}};
  for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    for (const auto& c : cases) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " dtype " << dtype) {
        const ad::Array value = random_normal(c.shape, 3, 5.0, 2.0).astype(dtype);
        ad::Graph g;
        const auto x = ad::constant(g, value);
        const std::int64_t n = c.shape[0];
        const auto [mean, variance] = sharded_moments(x, {n / 3, n - n / 3 - 2, 2}, c.axes);
        BOOST_TEST((mean.dtype() == dtype));
        ad::Session s(g);
        const auto out = s.run({mean, variance});
        const Reference want = closed_form(value.astype(ad::DType::Float64), c.axes);
        const double tolerance = dtype == ad::DType::Float64 ? 1e-12 : 2e-6;
        check_close(out[0], want.mean, tolerance);
        check_close(out[1], want.variance, tolerance);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(statistics_hold_count_mean_and_m2_in_float64) {
  const ad::Array value = random_array({6, 4}, 5, -1.0, 1.0);
  ad::Graph g;
  const auto s = ad::nn::moment_statistics(ad::constant(g, value.astype(ad::DType::Float32)), {0});
  BOOST_TEST((s.m2.dtype() == ad::DType::Float64));
  BOOST_TEST(s.mean.shape() == ad::Shape({1, 4}));
  ad::Session session(g);
  const auto out = session.run({s.count, s.mean, s.m2});
  const Reference want =
      closed_form(value.astype(ad::DType::Float32).astype(ad::DType::Float64), {0});
  for (std::int64_t c = 0; c < 4; ++c) {
    BOOST_TEST(out[0].flat(c) == 6.0);
    BOOST_TEST(out[1].flat(c) == want.mean[static_cast<std::size_t>(c)],
               boost::test_tools::tolerance(1e-6));
    BOOST_TEST(out[2].flat(c) == 6.0 * want.variance[static_cast<std::size_t>(c)],
               boost::test_tools::tolerance(1e-5));
  }
}

BOOST_AUTO_TEST_CASE(an_empty_shard_merges_as_nothing) {
  const ad::Array value = random_array({5, 3}, 7);
  ad::Graph g;
  const auto x = ad::constant(g, value);
  const auto [mean, variance] = sharded_moments(x, {0, 5}, {0});
  ad::Session s(g);
  const auto out = s.run({mean, variance});
  const Reference want = closed_form(value, {0});
  check_close(out[0], want.mean, 1e-12);
  check_close(out[1], want.variance, 1e-12);
}

BOOST_AUTO_TEST_CASE(merged_moments_are_differentiable_to_second_order) {
  for (const auto& axes : std::vector<std::vector<int>>{{0}, {0, 2}}) {
    ad::testing::check_gradient(
        [&](const std::vector<ad::Tensor>& in) {
          const auto [mean, variance] = sharded_moments(in[0], {2, 3}, axes);
          return ad::mul(ad::square(mean), ad::sqrt(variance));
        },
        {random_array({5, 3, 2}, 11, -2.0, 2.0)}, 1e-6, true);
  }
}

BOOST_AUTO_TEST_CASE(merge_rejects_statistics_that_are_not_stacked_float64) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {4, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::nn::merge_moment_statistics({x, x, x}), ad::ValueError,
                        (ad::testing::MessageHas{{"merge_moment_statistics", "float32"}}));
}

BOOST_AUTO_TEST_CASE(normalize_gradients_match_finite_differences_to_second_order) {
  std::uint64_t seed = 100;
  for (const auto& c : normalize_cases()) {
    for (const bool fused : {true, false}) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " fused " << fused) {
        ad::testing::check_gradient(
            [&](const std::vector<ad::Tensor>& in) { return normalize_of(c, in, fused); },
            normalize_values(c, seed += 10), 1e-6, true);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(normalize_fused_and_composed_agree_in_both_dtypes) {
  std::uint64_t seed = 300;
  for (const auto& c : normalize_cases()) {
    const auto values = normalize_values(c, seed += 10);
    const auto dy_value = random_array(c.shape, seed + 5);
    const auto v_value = random_array(c.shape, seed + 6);
    std::vector<std::vector<double>> float64_results;
    for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " dtype " << dtype) {
        ad::Graph g;
        ad::FeedDict feeds;
        std::vector<ad::Tensor> in;
        for (std::size_t i = 0; i < values.size(); ++i) {
          in.push_back(ad::placeholder(g, dtype, values[i].shape(), "in" + std::to_string(i)));
          feeds.emplace_back(in.back(), values[i].astype(dtype));
        }
        const auto dy = ad::constant(g, dy_value.astype(dtype));
        const auto v = ad::constant(g, v_value.astype(dtype));
        std::vector<ad::Tensor> fetch;
        for (const bool fused : {true, false}) {
          const auto y = normalize_of(c, in, fused);
          const std::vector<ad::GradTarget> targets(in.begin(), in.end());
          const auto first = ad::gradients({y}, targets, {dy});
          const auto second = ad::gradients({first[0] * v}, targets);
          fetch.insert(fetch.end(), {y, first[0], first[1], first[2], second[0], second[1]});
        }
        ad::Session s(g);
        const auto out = s.run(fetch, feeds);
        const double tol = dtype == ad::DType::Float64 ? 1e-10 : 1e-5;
        for (std::size_t k = 0; k < 6; ++k) {
          const auto fused = ad::testing::to_doubles(out[k]);
          const auto composed = ad::testing::to_doubles(out[k + 6]);
          BOOST_TEST(ad::testing::max_error(fused, composed) < tol, "output " << k);
          if (dtype == ad::DType::Float64) {
            float64_results.push_back(fused);
          } else {
            // float32 against float64, relative to the size of the values.
            double scale = 1;
            for (const double r : float64_results[k]) scale = std::max(scale, std::abs(r));
            BOOST_TEST(ad::testing::max_error(fused, float64_results[k]) < 1e-5 * scale,
                       "float32 output " << k);
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(normalize_values_are_the_same_fused_or_composed_with_any_threads) {
  // Layer norm's own kernels (cases 0 and 1) and the batch-norm machinery (the others) alike,
  // with and without scale and offset.
  for (const auto& c : normalize_cases()) {
    for (const int present : {0, 1, 2, 3}) {  // bit 0: scale, bit 1: offset
      const auto values = normalize_values(c, 7);
      ad::Graph g;
      std::vector<ad::Tensor> in{ad::constant(g, values[0]),
                                 present & 1 ? ad::constant(g, values[1]) : ad::Tensor(),
                                 present & 2 ? ad::constant(g, values[2]) : ad::Tensor()};
      const auto fused = normalize_of(c, in, true);
      const auto dx = ad::gradients({ad::square(fused)}, {in[0]})[0];
      ad::Session s(g);
      const auto out = s.run({fused, normalize_of(c, in, false)});
      BOOST_TEST(out[0].bitwise_equal(out[1]), "shape " << c.shape << " inputs " << present);
      ad::set_num_threads(1);
      const auto one = s.run({dx});
      ad::set_num_threads(2);
      const auto two = s.run({dx});
      BOOST_TEST(one[0].bitwise_equal(two[0]), "shape " << c.shape << " inputs " << present);
    }
  }
}

BOOST_AUTO_TEST_CASE(normalize_without_scale_or_offset_matches_finite_differences) {
  for (const auto& c : normalize_cases()) {
    const auto values = normalize_values(c, 60);
    ad::testing::check_gradient(
        [&](const std::vector<ad::Tensor>& in) {
          return ad::nn::normalize({.x = in[0], .offset = in[1]}, 1e-3, c.axes, true);
        },
        {values[0], values[2]}, 1e-6, true);
    ad::testing::check_gradient(
        [&](const std::vector<ad::Tensor>& in) {
          return ad::nn::normalize({.x = in[0]}, 1e-3, c.axes, true);
        },
        {values[0]}, 1e-6, true);
  }
}

BOOST_AUTO_TEST_SUITE_END()
