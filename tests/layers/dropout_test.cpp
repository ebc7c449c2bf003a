// dropout: inference identity, exact scaling of kept units, the kept fraction and the mean over
// many samples, fresh masks per run and reproducible ones per seed, noise_shape, a training tensor,
// gradients, error texts.
#include "layers/dropout.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;
using ad::testing::random_array;

BOOST_AUTO_TEST_SUITE(dropout_test)

BOOST_AUTO_TEST_CASE(inference_is_the_identity) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 5}, "x");
  auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto y = L::dropout(x, {.rate = 0.9});
  auto z = L::dropout(x, {.rate = 0.9, .training = flag});
  BOOST_TEST(y.shape() == x.shape());
  BOOST_TEST(z.shape() == x.shape());
  ad::Session s(g);
  const auto xv = random_array({3, 5}, 1).astype(ad::DType::Float32);
  const auto r = s.run({y, z}, {{x, xv}, {flag, ad::Array::scalar(false)}});
  BOOST_TEST(r[0].bitwise_equal(xv));
  BOOST_TEST(r[1].bitwise_equal(xv));
}

BOOST_AUTO_TEST_CASE(kept_units_are_scaled_exactly_and_dropped_ones_are_zero) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 50}, "x");
  auto y = L::dropout(x, {.rate = 0.25, .training = true});
  auto dx = ad::gradients(ad::reduce_sum(y), {x})[0];
  ad::Session s(g);
  const auto xv = random_array({40, 50}, 2, 0.5, 2.0);
  const auto r = s.run({y, dx}, {{x, xv}});
  std::int64_t kept = 0;
  bool exact = true;
  for (std::int64_t i = 0; i < xv.size(); ++i) {
    const double v = r[0].flat(i);
    const bool keep = v != 0.0;
    kept += keep ? 1 : 0;
    // TF's order: x * (1 / (1 - rate)), then times the 0/1 mask.
    exact &= !keep || v == xv.flat(i) * (1.0 / 0.75);
    // The gradient is the same mask times the same scale.
    exact &= r[1].flat(i) == (keep ? 1.0 / 0.75 : 0.0);
  }
  BOOST_TEST(exact);
  // 2000 draws with keep probability 0.75: the kept fraction is within 5 sigma (0.048).
  BOOST_TEST(std::abs(static_cast<double>(kept) / 2000.0 - 0.75) < 0.05);
}

BOOST_AUTO_TEST_CASE(the_mean_is_preserved_over_many_samples) {
  ad::Graph g;
  g.set_seed(7);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1}, "x");
  auto y = L::dropout(x, {.rate = 0.3, .training = true});
  auto mean = ad::reduce_mean(y);
  ad::Session s(g);
  const auto ones = ad::Array::full(ad::DType::Float32, {200000}, 1.0);
  // Each element has mean 1 and variance rate / (1 - rate) = 0.43; the mean of 2e5 has sigma
  // 0.0015, so 0.008 is more than 5 sigma.
  for (int run = 0; run < 3; ++run) {
    BOOST_TEST(std::abs(s.eval(mean, {{x, ones}}).item<float>() - 1.0f) < 0.008f);
  }
}

BOOST_AUTO_TEST_CASE(each_run_draws_a_new_mask_and_seeds_reproduce_them) {
  auto masks = [](std::optional<std::int64_t> seed) {
    ad::Graph g;
    g.set_seed(42);
    auto x = ad::constant(g, ad::Array::full(ad::DType::Float32, {64}, 1.0));
    auto y = L::dropout(x, {.seed = seed, .training = true});
    ad::Session s(g);
    return std::pair{s.eval(y), s.eval(y)};
  };
  const auto [a1, a2] = masks(3);
  const auto [b1, b2] = masks(3);
  const auto [c1, c2] = masks(4);
  BOOST_TEST(!a1.bitwise_equal(a2));
  BOOST_TEST(a1.bitwise_equal(b1));
  BOOST_TEST(a2.bitwise_equal(b2));
  BOOST_TEST(!a1.bitwise_equal(c1));
}

BOOST_AUTO_TEST_CASE(noise_shape_broadcasts_the_mask) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 16}, "x");
  auto rows = L::dropout(x, {.noise_shape = ad::Shape{-1, 1}, .training = true});
  auto cols = L::dropout(x, {.noise_shape = ad::Shape{1, 16}, .training = true});
  BOOST_TEST(rows.shape() == ad::Shape({-1, 16}));
  ad::Session s(g);
  const auto ones = ad::Array::full(ad::DType::Float32, {32, 16}, 1.0);
  const auto r = s.run({rows, cols}, {{x, ones}});
  bool rows_constant = true;
  bool cols_constant = true;
  int dropped_rows = 0;
  for (std::int64_t i = 0; i < 32; ++i) {
    for (std::int64_t j = 0; j < 16; ++j) {
      rows_constant &= r[0].at({i, j}) == r[0].at({i, 0});
      cols_constant &= r[1].at({i, j}) == r[1].at({0, j});
    }
    dropped_rows += r[0].at({i, 0}) == 0.0 ? 1 : 0;
  }
  BOOST_TEST(rows_constant);
  BOOST_TEST(cols_constant);
  BOOST_TEST(dropped_rows > 0);
  BOOST_TEST(dropped_rows < 32);
}

BOOST_AUTO_TEST_CASE(training_tensor_and_object_form) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {4, 100}, "x");
  auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
  L::Dropout layer({.rate = 0.5});
  auto y = layer(x, flag);
  auto inference = layer(x);
  ad::Session s(g);
  const auto xv = random_array({4, 100}, 3, 1.0, 2.0);
  const auto t = s.eval(y, {{x, xv}, {flag, ad::Array::scalar(true)}});
  const auto f = s.eval(y, {{x, xv}, {flag, ad::Array::scalar(false)}});
  int zeros = 0;
  for (std::int64_t i = 0; i < t.size(); ++i) zeros += t.flat(i) == 0.0 ? 1 : 0;
  BOOST_TEST(zeros > 100);
  BOOST_TEST(zeros < 300);
  BOOST_TEST(f.bitwise_equal(xv));
  BOOST_TEST(s.eval(inference, {{x, xv}}).bitwise_equal(xv));
  // rate 0 keeps everything even in training.
  auto none = L::dropout(x, {.rate = 0.0, .training = true});
  BOOST_TEST(s.eval(none, {{x, xv}}).bitwise_equal(xv));
}

// The rate fed at run time: kept units are exactly x / (1 - rate), and the kept count of n draws is
// Binomial(n, 1 - rate), within 5 standard deviations sqrt(n rate (1 - rate)) of n (1 - rate).
BOOST_AUTO_TEST_CASE(a_rate_tensor_is_read_at_run_time) {
  ad::Graph g;
  g.set_seed(5);
  auto x = ad::placeholder(g, ad::DType::Float64, {-1}, "x");
  auto rate = ad::placeholder(g, ad::DType::Float64, {}, "rate");
  auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto y = L::dropout(x, {.rate = rate, .training = flag});
  ad::Session s(g);
  constexpr std::int64_t n = 100000;
  const auto xv = random_array({n}, 9, 0.5, 2.0);
  for (const double p : {0.3, 0.8, 0.0}) {
    const auto out =
        s.eval(y, {{x, xv}, {rate, ad::Array::scalar(p)}, {flag, ad::Array::scalar(true)}});
    std::int64_t kept = 0;
    bool exact = true;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool keep = out.flat(i) != 0.0;
      kept += keep ? 1 : 0;
      exact &= !keep || out.flat(i) == xv.flat(i) * (1.0 / (1.0 - p));
    }
    BOOST_TEST(exact);
    const double expected = static_cast<double>(n) * (1 - p);
    const double bound = 5 * std::sqrt(static_cast<double>(n) * p * (1 - p));
    BOOST_TEST(std::abs(static_cast<double>(kept) - expected) <= bound,
               "rate " << p << ": kept " << kept << ", expected " << expected << " +- " << bound);
  }
  const auto off =
      s.eval(y, {{x, xv}, {rate, ad::Array::scalar(0.5)}, {flag, ad::Array::scalar(false)}});
  BOOST_TEST(off.bitwise_equal(xv));
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(y, {{x, xv}, {rate, ad::Array::scalar(1.0)}, {flag, ad::Array::scalar(true)}}),
      ad::InvalidArgumentError, (MessageHas{{"CheckDropoutRate", "rate must be in [0, 1)", "1"}}));
}

// With the same seeds a rate Tensor fed r gives the masks of the number r, bit for bit.
BOOST_AUTO_TEST_CASE(a_fed_rate_matches_the_same_number) {
  const auto run = [](bool as_tensor) {
    ad::Graph g;
    g.set_seed(21);
    auto x = ad::constant(g, random_array({8, 64}, 4));
    auto rate = ad::placeholder(g, ad::DType::Float32, {}, "rate");
    auto y = as_tensor ? L::dropout(x, {.rate = rate, .seed = 3, .training = true})
                       : L::dropout(x, {.rate = 0.25, .seed = 3, .training = true});
    ad::Session s(g);
    ad::FeedDict feed;
    if (as_tensor) feed.emplace_back(rate, ad::Array::scalar(0.25F));
    return std::pair{s.eval(y, feed), s.eval(y, feed)};
  };
  const auto [a1, a2] = run(true);
  const auto [b1, b2] = run(false);
  BOOST_TEST(a1.bitwise_equal(b1));
  BOOST_TEST(a2.bitwise_equal(b2));
  BOOST_TEST(!a1.bitwise_equal(a2));
}

// TF's noise_shape rule with a rate Tensor: a mask dim of 1 repeats along that axis, so whole rows
// (or columns) are kept or dropped together, and kept entries are x / (1 - rate) exactly.
BOOST_AUTO_TEST_CASE(noise_shape_with_a_rate_tensor) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 16}, "x");
  auto rate = ad::placeholder(g, ad::DType::Float64, {}, "rate");
  auto rows = L::dropout(x, {.rate = rate, .noise_shape = ad::Shape{-1, 1}, .training = true});
  auto cols = L::dropout(x, {.rate = rate, .noise_shape = ad::Shape{1, 16}, .training = true});
  ad::Session s(g);
  const auto xv = random_array({64, 16}, 8, 1.0, 2.0);
  const auto r = s.run({rows, cols}, {{x, xv}, {rate, ad::Array::scalar(0.5)}});
  bool pattern = true;
  int kept_rows = 0;
  int kept_cols = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    const bool row_kept = r[0].at({i, 0}) != 0.0;
    kept_rows += row_kept ? 1 : 0;
    for (std::int64_t j = 0; j < 16; ++j) {
      const bool col_kept = r[1].at({0, j}) != 0.0;
      if (i == 0) kept_cols += col_kept ? 1 : 0;
      pattern &= r[0].at({i, j}) == (row_kept ? xv.at({i, j}) * 2.0 : 0.0);
      pattern &= r[1].at({i, j}) == (col_kept ? xv.at({i, j}) * 2.0 : 0.0);
    }
  }
  BOOST_TEST(pattern);
  // 64 rows at keep probability 1/2: 5 sigma is 20 rows; 16 columns: 5 sigma is 10.
  BOOST_TEST(std::abs(kept_rows - 32) <= 20);
  BOOST_TEST(std::abs(kept_cols - 8) <= 10);
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  BOOST_CHECK_EXCEPTION((void)L::dropout(x, {.rate = 1.0, .name = "d"}), ad::ValueError,
                        (MessageHas{{"dropout 'd'", "rate", "[0, 1)", "1"}}));
  BOOST_CHECK_EXCEPTION((void)L::dropout(x, {.noise_shape = ad::Shape{4}, .training = true}),
                        ad::ValueError, (MessageHas{{"dropout", "noise_shape [4]", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)L::dropout(x, {.noise_shape = ad::Shape{1, 3}, .training = true}),
                        ad::ValueError, (MessageHas{{"noise_shape [1, 3]", "[?, 4]"}}));
  auto ints = ad::placeholder(g, ad::DType::Int64, {2}, "ints");
  BOOST_CHECK_EXCEPTION((void)L::dropout(ints), ad::ValueError, (MessageHas{{"dropout", "int64"}}));
  auto vector_rate = ad::placeholder(g, ad::DType::Float32, {1}, "vector_rate");
  BOOST_CHECK_EXCEPTION((void)L::dropout(x, {.rate = vector_rate, .name = "v"}), ad::ValueError,
                        (MessageHas{{"dropout 'v'", "float32 or float64 scalar", "[1]"}}));
  auto int_rate = ad::placeholder(g, ad::DType::Int64, {}, "int_rate");
  BOOST_CHECK_EXCEPTION((void)L::Dropout({.rate = int_rate}), ad::ValueError,
                        (MessageHas{{"dropout", "float32 or float64 scalar", "int64"}}));
}

BOOST_AUTO_TEST_SUITE_END()
