// normalization: the mergeable statistic. Per-shard (count, mean, M2) merged with Chan's formula
// equals the statistics of the whole batch (closed forms in long double), in both dtypes and
// several layouts; the merge pipeline is differentiable to second order (central differences);
// an empty shard merges as nothing.
#include "autodiff/ops/normalization.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
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

BOOST_AUTO_TEST_SUITE_END()
