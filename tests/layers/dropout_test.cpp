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
}

BOOST_AUTO_TEST_SUITE_END()
