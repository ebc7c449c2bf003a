// Initializers: constant values, sample statistics of the random ones on large tensors against
// closed forms (mean and std within 5 standard errors, bounds and limits from the formulas),
// fan computation, seeded reproducibility, the orthogonal initializer's properties, and errors.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace init = ad::initializers;
using ad::testing::MessageHas;

namespace {

// The initial value `initializer` gives a variable of this shape and dtype.
ad::Array initial_value(const ad::Initializer& initializer, const ad::Shape& shape,
                        ad::DType dtype = ad::DType::Float64,
                        std::optional<std::int64_t> graph_seed = {}) {
  ad::Graph g;
  if (graph_seed) g.set_seed(*graph_seed);
  const auto v =
      ad::Variable::create(g, "v", {.shape = shape, .dtype = dtype, .initializer = initializer});
  ad::Session s(g);
  s.run({v.initializer()});
  return s.value(v);
}

struct Stats {
  double mean = 0;
  double stddev = 0;
  double min = 0;
  double max = 0;
  double n = 0;
};

Stats stats_of(const ad::Array& a) {
  Stats s;
  s.n = static_cast<double>(a.size());
  s.min = s.max = a.flat(0);
  double sum = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const double x = a.flat(i);
    sum += x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  s.mean = sum / s.n;
  double squares = 0;
  for (std::int64_t i = 0; i < a.size(); ++i)
    squares += (a.flat(i) - s.mean) * (a.flat(i) - s.mean);
  s.stddev = std::sqrt(squares / s.n);
  return s;
}

// Sample mean and standard deviation within 5 standard errors of `mean` and `stddev` (the error of
// the sample std is taken for a normal, sigma / sqrt(2n), which bounds the lighter-tailed
// truncated normal and uniform too).
void check_moments(const Stats& s, double mean, double stddev) {
  BOOST_TEST(std::abs(s.mean - mean) <= 5 * stddev / std::sqrt(s.n),
             "mean " << s.mean << " vs " << mean);
  BOOST_TEST(std::abs(s.stddev - stddev) <= 5 * stddev / std::sqrt(2 * s.n),
             "stddev " << s.stddev << " vs " << stddev);
}

// Standard deviation of a unit normal truncated to [-2, 2]: 1 - 2 * 2 * phi(2) / (Phi(2) -
// Phi(-2)).
double truncated_unit_stddev() {
  const double phi2 = std::exp(-2.0) / std::sqrt(2 * std::numbers::pi);
  return std::sqrt(1.0 - 4.0 * phi2 / std::erf(2.0 / std::numbers::sqrt2));
}

const ad::Shape kLarge{400, 500};
// Receptive field 9: fan_in 576, fan_out 2304; 147456 values, so 5 standard errors of the sample
// std are 0.9%.
const ad::Shape kConv{3, 3, 64, 256};
constexpr double kFanIn = 576;
constexpr double kFanOut = 2304;

}  // namespace

BOOST_AUTO_TEST_SUITE(initializers_test)

BOOST_AUTO_TEST_CASE(constant_initializers_fill_every_dtype) {
  const auto z = initial_value(init::zeros(), {2, 3}, ad::DType::Float32);
  const auto o = initial_value(init::ones(), {2, 3}, ad::DType::Int64);
  const auto c = initial_value(init::constant(-2.5), {4});
  const auto b = initial_value(init::ones(), {2}, ad::DType::Bool);
  for (std::int64_t i = 0; i < 6; ++i) {
    BOOST_TEST(z.data<float>()[static_cast<std::size_t>(i)] == 0.0f);
    BOOST_TEST(o.data<std::int64_t>()[static_cast<std::size_t>(i)] == 1);
  }
  for (double x : c.data<double>()) BOOST_TEST(x == -2.5);
  BOOST_TEST(b.data<bool>()[1]);
}

BOOST_AUTO_TEST_CASE(constant_array_is_reshaped_converted_or_broadcast) {
  const auto values = ad::Array::from<double>({1, 2, 3, 4, 5, 6}, {6});
  const auto reshaped = initial_value(init::constant(values), {2, 3}, ad::DType::Float32);
  BOOST_TEST(reshaped.dtype() == ad::DType::Float32);
  BOOST_TEST(reshaped.at({1, 0}) == 4.0);
  const auto filled = initial_value(init::constant(ad::Array::scalar(7.0)), {3}, ad::DType::Int64);
  BOOST_TEST(filled.at({2}) == 7.0);
  BOOST_CHECK_EXCEPTION((void)initial_value(init::constant(values), {4}), ad::ValueError,
                        (MessageHas{{"constant initializer", "'v/Initializer/'", "[6]", "[4]"}}));
}

BOOST_AUTO_TEST_CASE(random_normal_has_the_requested_moments) {
  check_moments(stats_of(initial_value(init::random_normal(1.5, 2.0), kLarge)), 1.5, 2.0);
  const auto f32 = initial_value(init::random_normal(-1.0, 0.5), kLarge, ad::DType::Float32);
  BOOST_TEST(f32.dtype() == ad::DType::Float32);
  check_moments(stats_of(f32), -1.0, 0.5);
}

BOOST_AUTO_TEST_CASE(truncated_normal_stays_within_two_stddevs) {
  const auto s = stats_of(initial_value(init::truncated_normal(1.0, 0.5), kLarge));
  BOOST_TEST(s.min >= 1.0 - 2 * 0.5);
  BOOST_TEST(s.max <= 1.0 + 2 * 0.5);
  BOOST_TEST(s.min < 1.0 - 1.99 * 0.5);  // the whole range is used
  check_moments(s, 1.0, 0.5 * truncated_unit_stddev());
}

BOOST_AUTO_TEST_CASE(random_uniform_covers_its_half_open_range) {
  const auto s = stats_of(initial_value(init::random_uniform(-3.0, 5.0), kLarge));
  BOOST_TEST(s.min >= -3.0);
  BOOST_TEST(s.max < 5.0);
  BOOST_TEST(s.min < -2.99);
  BOOST_TEST(s.max > 4.99);
  check_moments(s, 1.0, 8.0 / std::sqrt(12.0));
}

BOOST_AUTO_TEST_CASE(fans_follow_tf) {
  const auto fans = [](const ad::Shape& shape) {
    const auto f = init::compute_fans(shape);
    return std::vector<double>{f.fan_in, f.fan_out};
  };
  BOOST_TEST(fans({}) == (std::vector<double>{1, 1}), boost::test_tools::per_element());
  BOOST_TEST(fans({7}) == (std::vector<double>{7, 7}), boost::test_tools::per_element());
  BOOST_TEST(fans({4, 5}) == (std::vector<double>{4, 5}), boost::test_tools::per_element());
  BOOST_TEST(fans(kConv) == (std::vector<double>{kFanIn, kFanOut}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(glorot_uniform_limit_is_sqrt_6_over_fan_sum) {
  const double limit = std::sqrt(6.0 / (kFanIn + kFanOut));
  const auto s = stats_of(initial_value(init::glorot_uniform(), kConv));
  BOOST_TEST(s.min >= -limit);
  BOOST_TEST(s.max <= limit);
  BOOST_TEST(s.max > 0.99 * limit);
  check_moments(s, 0.0, limit / std::sqrt(3.0));
}

BOOST_AUTO_TEST_CASE(he_uniform_limit_is_sqrt_6_over_fan_in) {
  const double limit = std::sqrt(6.0 / kFanIn);
  const auto s = stats_of(initial_value(init::he_uniform(), kConv));
  BOOST_TEST(s.max <= limit);
  BOOST_TEST(s.max > 0.99 * limit);
  check_moments(s, 0.0, limit / std::sqrt(3.0));
  const double lecun = std::sqrt(3.0 / kFanIn);
  check_moments(stats_of(initial_value(init::lecun_uniform(), kConv)), 0.0, lecun / std::sqrt(3.0));
}

BOOST_AUTO_TEST_CASE(truncated_variance_scaling_keeps_the_variance_scale_over_fan) {
  // The truncation correction makes the variance exactly scale / fan; values stop at two
  // standard deviations of the untruncated draw.
  struct Case {
    ad::Initializer initializer;
    double variance;
  };
  const Case cases[] = {{init::glorot_normal(), 2.0 / (kFanIn + kFanOut)},
                        {init::he_normal(), 2.0 / kFanIn},
                        {init::lecun_normal(), 1.0 / kFanIn},
                        {init::variance_scaling(3.0, init::FanMode::kFanOut), 3.0 / kFanOut}};
  for (const auto& c : cases) {
    const auto s = stats_of(initial_value(c.initializer, kConv));
    const double bound = 2 * std::sqrt(c.variance) / truncated_unit_stddev();
    BOOST_TEST(s.max <= bound);
    BOOST_TEST(s.min >= -bound);
    check_moments(s, 0.0, std::sqrt(c.variance));
  }
}

BOOST_AUTO_TEST_CASE(untruncated_variance_scaling_has_tails) {
  const double stddev = std::sqrt(0.5 / kFanOut);
  const auto s = stats_of(initial_value(
      init::variance_scaling(0.5, init::FanMode::kFanOut, init::Distribution::kUntruncatedNormal),
      kConv));
  check_moments(s, 0.0, stddev);
  BOOST_TEST(s.max > 3 * stddev);  // P(max of 147456 draws < 3 sigma) is about e^-199
}

BOOST_AUTO_TEST_CASE(a_scalar_has_fan_one) {
  // 200 scalars, each uniform in [-limit, limit) with limit = sqrt(3 * 4 / 1). With a fan of 2 no
  // value could pass 0.8 * limit; with fan 1, all 200 staying below it has probability 0.8^200.
  ad::Graph g;
  g.set_seed(9);
  std::vector<ad::Variable> vars;
  for (int i = 0; i < 200; ++i) {
    vars.push_back(ad::Variable::create(
        g, "s" + std::to_string(i),
        {.shape = {},
         .dtype = ad::DType::Float64,
         .initializer =
             init::variance_scaling(4.0, init::FanMode::kFanIn, init::Distribution::kUniform)}));
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const double limit = std::sqrt(12.0);
  double largest = 0;
  for (const auto& v : vars) largest = std::max(largest, std::abs(s.value(v).item<double>()));
  BOOST_TEST(largest <= limit);
  BOOST_TEST(largest > 0.8 * limit);
}

BOOST_AUTO_TEST_CASE(seeded_initial_values_are_reproducible) {
  const ad::Shape shape{50, 40};
  // A graph seed alone, an op seed alone, and both, give the same values in a second graph.
  const auto a1 = initial_value(init::glorot_uniform(), shape, ad::DType::Float32, 42);
  const auto a2 = initial_value(init::glorot_uniform(), shape, ad::DType::Float32, 42);
  BOOST_TEST(a1.bitwise_equal(a2));
  const auto b1 = initial_value(init::he_normal(7), shape, ad::DType::Float32);
  const auto b2 = initial_value(init::he_normal(7), shape, ad::DType::Float32);
  BOOST_TEST(b1.bitwise_equal(b2));
  const auto o1 = initial_value(init::orthogonal(1.0, 3), shape, ad::DType::Float64, 5);
  const auto o2 = initial_value(init::orthogonal(1.0, 3), shape, ad::DType::Float64, 5);
  BOOST_TEST(o1.bitwise_equal(o2));
  // Other seeds give other values.
  BOOST_TEST(
      !a1.bitwise_equal(initial_value(init::glorot_uniform(), shape, ad::DType::Float32, 43)));
  BOOST_TEST(!b1.bitwise_equal(initial_value(init::he_normal(8), shape, ad::DType::Float32)));
}

BOOST_AUTO_TEST_CASE(variables_of_one_program_draw_different_values) {
  ad::Graph g;
  g.set_seed(1);
  const auto a =
      ad::Variable::create(g, "a", {.shape = {100}, .initializer = init::random_normal()});
  const auto b =
      ad::Variable::create(g, "b", {.shape = {100}, .initializer = init::random_normal()});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(!s.value(a).bitwise_equal(s.value(b)));
}

BOOST_AUTO_TEST_CASE(orthogonal_columns_or_rows_are_orthonormal) {
  // [rows, cols] = [product of leading dims, last dim]; the shorter side is orthonormal.
  const std::pair<ad::Shape, double> cases[] = {
      {{6, 4}, 1.0}, {{4, 6}, 2.0}, {{2, 3, 5}, 0.5}, {{5, 5}, 1.0}};
  for (const auto& [shape, gain] : cases) {
    const auto w = initial_value(init::orthogonal(gain), shape);
    std::int64_t rows = 1;
    for (int i = 0; i < shape.rank() - 1; ++i) rows *= shape[i];
    const std::int64_t cols = shape[shape.rank() - 1];
    const auto flat = w.data<double>();
    const auto at = [&](std::int64_t r, std::int64_t c) {
      return flat[static_cast<std::size_t>(r * cols + c)];
    };
    const bool by_columns = rows >= cols;
    const std::int64_t k = std::min(rows, cols);
    const std::int64_t len = std::max(rows, cols);
    for (std::int64_t i = 0; i < k; ++i) {
      for (std::int64_t j = 0; j < k; ++j) {
        double dot = 0;
        for (std::int64_t t = 0; t < len; ++t) {
          dot += by_columns ? at(t, i) * at(t, j) : at(i, t) * at(j, t);
        }
        BOOST_TEST(std::abs(dot - (i == j ? gain * gain : 0.0)) <= 1e-12);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(orthogonal_is_the_q_of_its_normal_matrix_with_positive_r_diagonal) {
  // Rebuild the normal matrix the initializer draws (same graph and op seed): with W = Q, the
  // product R = W^T A must be upper triangular with a positive diagonal.
  const std::int64_t m = 7;
  const std::int64_t n = 4;
  const auto w = initial_value(init::orthogonal(1.0, 11), {m, n}, ad::DType::Float64, 3);
  ad::Graph g;
  g.set_seed(3);
  const auto normal =
      ad::random_normal(g, {m, n}, 0.0, 1.0, {.dtype = ad::DType::Float64, .seed = 11});
  ad::Session s(g);
  const auto a = s.eval(normal);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double r = 0;
      for (std::int64_t t = 0; t < m; ++t) r += w.at({t, i}) * a.at({t, j});
      if (i > j) BOOST_TEST(std::abs(r) <= 1e-12);
      if (i == j) BOOST_TEST(r > 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_initializer_and_the_variable) {
  BOOST_CHECK_EXCEPTION(
      (void)initial_value(init::glorot_uniform(), {4, 4}, ad::DType::Int64), ad::ValueError,
      (MessageHas{{"variance_scaling initializer", "'v/Initializer/'", "int64"}}));
  BOOST_CHECK_EXCEPTION((void)initial_value(init::orthogonal(), {4}), ad::ValueError,
                        (MessageHas{{"orthogonal initializer", "[4]", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)init::variance_scaling(0.0), ad::ValueError,
                        (MessageHas{{"scale must be positive"}}));
}

BOOST_AUTO_TEST_SUITE_END()
