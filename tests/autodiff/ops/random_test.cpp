// Random ops: the Philox block function against Random123's published answers, reproducibility
// (seeds, sessions, runs, thread counts), sample statistics against closed forms with tolerances
// of five standard errors, and bounds.

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <numbers>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

constexpr std::int64_t kSamples = 100000;

struct Moments {
  double mean = 0;
  double variance = 0;  // unbiased
  double min = INFINITY;
  double max = -INFINITY;
};

Moments moments_of(const ad::Array& a) {
  Moments m;
  const auto n = static_cast<double>(a.size());
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const double v = a.flat(i);
    m.mean += v;
    m.min = std::min(m.min, v);
    m.max = std::max(m.max, v);
  }
  m.mean /= n;
  for (std::int64_t i = 0; i < a.size(); ++i)
    m.variance += (a.flat(i) - m.mean) * (a.flat(i) - m.mean);
  m.variance /= n - 1;
  return m;
}

// Checks the sample mean and variance of `a` against a distribution with the given mean, variance
// and fourth central moment, within five standard errors.
void check_moments(const ad::Array& a, double mean, double variance, double fourth) {
  const auto n = static_cast<double>(a.size());
  const Moments m = moments_of(a);
  const double mean_tolerance = 5 * std::sqrt(variance / n);
  const double variance_tolerance = 5 * std::sqrt((fourth - variance * variance) / n);
  BOOST_TEST(std::abs(m.mean - mean) <= mean_tolerance,
             "mean " << m.mean << " vs " << mean << " (tolerance " << mean_tolerance << ")");
  BOOST_TEST(std::abs(m.variance - variance) <= variance_tolerance,
             "variance " << m.variance << " vs " << variance << " (tolerance " << variance_tolerance
                         << ")");
}

// The fraction of values in [lo, hi) is within five standard errors of p.
void check_fraction(const ad::Array& a, double lo, double hi, double p) {
  std::int64_t count = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) count += a.flat(i) >= lo && a.flat(i) < hi;
  const auto n = static_cast<double>(a.size());
  const double fraction = static_cast<double>(count) / n;
  BOOST_TEST(std::abs(fraction - p) <= 5 * std::sqrt(p * (1 - p) / n),
             "fraction in [" << lo << ", " << hi << ") is " << fraction << ", expected " << p);
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

ad::Array draw(const std::function<ad::Tensor(ad::Graph&)>& build, int runs = 1) {
  ad::Graph g;
  auto t = build(g);
  ad::Session s(g);
  ad::Array value;
  for (int r = 0; r < runs; ++r) value = s.eval(t);
  return value;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(random_test)

BOOST_AUTO_TEST_CASE(philox_matches_random123_known_answers) {
  using Words = std::array<std::uint32_t, 4>;
  BOOST_TEST((ad::detail::philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
              Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  BOOST_TEST((ad::detail::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                        {0xffffffff, 0xffffffff}) ==
              Words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  BOOST_TEST((ad::detail::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                                        {0xa4093822, 0x299f31d0}) ==
              Words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

BOOST_AUTO_TEST_CASE(same_seeds_give_the_same_values_in_every_session) {
  auto build = [](ad::Graph& g) {
    g.set_seed(7);
    return ad::random_normal(g, {100});
  };
  ad::Graph g;
  auto t = build(g);
  ad::Session a(g);
  ad::Session b(g);
  const auto a1 = a.eval(t);
  const auto a2 = a.eval(t);
  const auto b1 = b.eval(t);
  const auto b2 = b.eval(t);
  BOOST_TEST(a1.bitwise_equal(b1));
  BOOST_TEST(a2.bitwise_equal(b2));
  BOOST_TEST(!a1.bitwise_equal(a2));  // each run draws new values
  // A graph built the same way elsewhere draws the same values.
  BOOST_TEST(draw(build).bitwise_equal(a1));
  BOOST_TEST(draw(build, 2).bitwise_equal(a2));
}

BOOST_AUTO_TEST_CASE(seeds_follow_tf1_rules) {
  // Without any seed, programs are still reproducible.
  auto unseeded = [](ad::Graph& g) { return ad::random_uniform(g, {50}); };
  BOOST_TEST(draw(unseeded).bitwise_equal(draw(unseeded)));
  // Op seeds from the graph differ per op; the same explicit op seed gives the same stream.
  ad::Graph g;
  g.set_seed(1);
  auto first = ad::random_normal(g, {50});
  auto second = ad::random_normal(g, {50});
  auto fixed_a = ad::random_normal(g, {50}, 0.0, 1.0, {.seed = 3});
  auto fixed_b = ad::random_normal(g, {50}, 0.0, 1.0, {.seed = 3});
  ad::Session s(g);
  const auto out = s.run({first, second, fixed_a, fixed_b});
  BOOST_TEST(!out[0].bitwise_equal(out[1]));
  BOOST_TEST(out[2].bitwise_equal(out[3]));
  // The graph seed matters, with or without an op seed.
  auto with_graph_seed = [](std::int64_t seed) {
    return draw([seed](ad::Graph& graph) {
      graph.set_seed(seed);
      return ad::random_normal(graph, {50}, 0.0, 1.0, {.seed = 3});
    });
  };
  BOOST_TEST(!with_graph_seed(1).bitwise_equal(with_graph_seed(2)));
  BOOST_TEST(with_graph_seed(1).bitwise_equal(out[2]));
}

BOOST_AUTO_TEST_CASE(values_do_not_depend_on_the_thread_count) {
  auto build = [](ad::Graph& g) {
    g.set_seed(11);
    return std::vector<ad::Tensor>{
        ad::random_normal(g, {kSamples}), ad::random_uniform(g, {kSamples}, -1.0, 3.0),
        ad::truncated_normal(g, {kSamples}, 0.0, 1.0, {.dtype = ad::DType::Float64})};
  };
  auto run = [&](int threads) {
    ad::set_num_threads(threads);
    ad::Graph g;
    const auto ts = build(g);
    ad::Session s(g);
    return s.run(ts);
  };
  const auto one = run(1);
  const auto two = run(2);
  ad::set_num_threads(2);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST(one[i].bitwise_equal(two[i]));
}

BOOST_AUTO_TEST_CASE(normal_statistics_match_the_distribution) {
  for (auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    const double mean = 2.0;
    const double stddev = 3.0;
    const auto a = draw([&](ad::Graph& g) {
      return ad::random_normal(g, {kSamples / 100, 100}, mean, stddev, {.dtype = dtype});
    });
    BOOST_TEST(a.dtype() == dtype);
    const double variance = stddev * stddev;
    check_moments(a, mean, variance, 3 * variance * variance);
    // Shape of the distribution: mass within one and two standard deviations.
    check_fraction(a, mean - stddev, mean + stddev, normal_cdf(1) - normal_cdf(-1));
    check_fraction(a, mean + stddev, mean + 2 * stddev, normal_cdf(2) - normal_cdf(1));
    check_fraction(a, -INFINITY, mean - 2 * stddev, normal_cdf(-2));
  }
}

BOOST_AUTO_TEST_CASE(uniform_values_lie_in_bounds_and_fill_them_evenly) {
  for (auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    const double lo = -1.5;
    const double hi = 2.5;
    const auto a = draw(
        [&](ad::Graph& g) { return ad::random_uniform(g, {kSamples}, lo, hi, {.dtype = dtype}); });
    const Moments m = moments_of(a);
    BOOST_TEST(m.min >= lo);
    BOOST_TEST(m.max < hi);
    const double width = hi - lo;
    check_moments(a, (lo + hi) / 2, width * width / 12, std::pow(width, 4) / 80);
    for (int bin = 0; bin < 10; ++bin) {
      check_fraction(a, lo + width * bin / 10, lo + width * (bin + 1) / 10, 0.1);
    }
  }
  // Rounding never reaches maxval, even when float32 cannot represent the range finely.
  const auto narrow =
      draw([](ad::Graph& g) { return ad::random_uniform(g, {kSamples}, 1.0, 1.0 + 1e-6); });
  const Moments m = moments_of(narrow);
  BOOST_TEST(m.min >= 1.0);
  BOOST_TEST(m.max < static_cast<double>(static_cast<float>(1.0 + 1e-6)));
}

BOOST_AUTO_TEST_CASE(truncated_normal_stays_within_two_standard_deviations) {
  // Moments of a standard normal truncated to [-2, 2]: with Z = P(|z| < 2) and phi the density,
  // E[z^2] = 1 - 4 phi(2) / Z and E[z^4] = 3 E[z^2] - 16 phi(2) / Z.
  const double phi = std::exp(-2.0) / std::sqrt(2 * std::numbers::pi);
  const double z = normal_cdf(2) - normal_cdf(-2);
  const double m2 = 1 - 4 * phi / z;
  const double m4 = 3 * m2 - 16 * phi / z;
  for (auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    const double mean = -1.0;
    const double stddev = 0.5;
    const auto a = draw([&](ad::Graph& g) {
      return ad::truncated_normal(g, {kSamples}, mean, stddev, {.dtype = dtype});
    });
    const Moments m = moments_of(a);
    BOOST_TEST(m.min >= mean - 2 * stddev);
    BOOST_TEST(m.max <= mean + 2 * stddev);
    const double s2 = stddev * stddev;
    check_moments(a, mean, m2 * s2, m4 * s2 * s2);
    // The values beyond one standard deviation keep the normal's share of the truncated mass.
    check_fraction(a, mean + stddev, mean + 2 * stddev, (normal_cdf(2) - normal_cdf(1)) / z);
  }
}

BOOST_AUTO_TEST_CASE(uniform_takes_its_shape_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8}, "x");
  auto mask = ad::random_uniform(ad::shape(x), 0.0, 1.0);
  BOOST_TEST(mask.shape() == ad::Shape({-1, 8}));
  auto dims = ad::placeholder(g, ad::DType::Int64, {2}, "dims");
  auto fed = ad::random_uniform(dims, 0.0, 1.0, {.dtype = ad::DType::Float64});
  ad::Session s(g);
  const auto out = s.run({mask}, {{x, ad::Array(ad::DType::Float32, {5, 8})}});
  BOOST_TEST(out[0].shape() == ad::Shape({5, 8}));
  BOOST_TEST(moments_of(out[0]).max < 1.0);
  BOOST_CHECK_EXCEPTION(s.eval(fed, {{dims, ad::Array::from<std::int64_t>({2, -3}, {2})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"RandomUniform 'RandomUniform_1'", "-3"}}));
}

// A shape tensor changes only where the shape comes from: with the same seeds the values are those
// of the static-shape op, run after run, so the statistics tests above cover these forms too.
BOOST_AUTO_TEST_CASE(normal_and_truncated_normal_take_their_shape_at_run_time) {
  const auto draw = [](bool by_tensor) {
    ad::Graph g;
    g.set_seed(11);
    auto dims = ad::placeholder(g, ad::DType::Int64, {2}, "dims");
    const ad::RandomOptions f64{.dtype = ad::DType::Float64, .seed = 5};
    std::vector<ad::Tensor> ops;
    if (by_tensor) {
      ops = {ad::random_normal(dims, 2.0, 3.0, f64), ad::truncated_normal(dims, -1.0, 0.5, f64),
             ad::random_uniform(dims, 0.0, 1.0, {.seed = 6})};
    } else {
      ops = {ad::random_normal(g, {kSamples / 4, 4}, 2.0, 3.0, f64),
             ad::truncated_normal(g, {kSamples / 4, 4}, -1.0, 0.5, f64),
             ad::random_uniform(g, {kSamples / 4, 4}, 0.0, 1.0, {.seed = 6})};
    }
    ad::Session s(g);
    const ad::FeedDict feed{{dims, ad::Array::vector<std::int64_t>({kSamples / 4, 4})}};
    auto first = s.run(ops, feed);
    auto second = s.run(ops, feed);
    first.insert(first.end(), second.begin(), second.end());
    return first;
  };
  const auto fed = draw(true);
  const auto fixed = draw(false);
  for (std::size_t k = 0; k < fed.size(); ++k) {
    BOOST_TEST(fed[k].shape() == ad::Shape({kSamples / 4, 4}));
    BOOST_TEST(fed[k].bitwise_equal(fixed[k]));
  }
  BOOST_TEST(!fed[0].bitwise_equal(fed[3]));
  // N(2, 3^2): fourth central moment 3 sigma^4.
  check_moments(fed[0], 2.0, 9.0, 3 * 81.0);
  BOOST_TEST(moments_of(fed[1]).min >= -2.0);
  BOOST_TEST(moments_of(fed[1]).max <= 0.0);

  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8}, "x");
  BOOST_TEST(ad::random_normal(ad::shape(x)).shape() == ad::Shape({-1, 8}));
  BOOST_TEST(
      ad::truncated_normal(ad::constant(g, ad::Array::vector<std::int64_t>({2, 3}))).shape() ==
      ad::Shape({2, 3}));
  auto dims = ad::placeholder(g, ad::DType::Int64, {2}, "dims");
  auto t = ad::truncated_normal(dims);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(t, {{dims, ad::Array::from<std::int64_t>({2, -3}, {2})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"TruncatedNormal 'TruncatedNormal_1'", "-3"}}));
  auto f = ad::placeholder(g, ad::DType::Float32, {2}, "f");
  BOOST_CHECK_EXCEPTION((void)ad::random_normal(f), ad::ValueError,
                        (MessageHas{{"random_normal", "'f:0'", "float32", "int64"}}));
}

BOOST_AUTO_TEST_CASE(rejects_bad_arguments) {
  ad::Graph g;
  BOOST_CHECK_EXCEPTION((void)ad::random_normal(g, {-1, 3}), ad::ValueError,
                        (MessageHas{{"random_normal 'RandomStandardNormal'", "[?, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::random_uniform(g, {3}, 0.0, 1.0, {.dtype = ad::DType::Int64}),
                        ad::ValueError, (MessageHas{{"random_uniform 'RandomUniform'", "int64"}}));
  BOOST_CHECK_EXCEPTION((void)ad::random_uniform(g, {3}, 2.0, 1.0), ad::ValueError,
                        (MessageHas{{"random_uniform", "minval 2", "maxval 1"}}));
  BOOST_CHECK_EXCEPTION((void)ad::truncated_normal(g, {3}, 0.0, -1.0), ad::ValueError,
                        (MessageHas{{"truncated_normal 'TruncatedNormal'", "stddev -1"}}));
  auto f = ad::placeholder(g, ad::DType::Float32, {2}, "f");
  BOOST_CHECK_EXCEPTION((void)ad::random_uniform(f), ad::ValueError,
                        (MessageHas{{"random_uniform", "'f:0'", "float32", "int64"}}));
}

BOOST_AUTO_TEST_SUITE_END()
