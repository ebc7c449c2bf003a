// matmul: values against a naive triple loop (all transpose flags, float32 and float64, batched),
// gradients (first and second order) against central differences, static shapes and errors.

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

// Stored shape of an operand whose op() is rows x cols.
ad::Shape stored(std::vector<std::int64_t> batch, std::int64_t rows, std::int64_t cols,
                 bool transpose) {
  batch.push_back(transpose ? cols : rows);
  batch.push_back(transpose ? rows : cols);
  return ad::Shape(batch);
}

// C[b] = op(A[b]) op(B[b]) with explicit index arithmetic, in long double.
std::vector<double> naive_matmul(const ad::Array& a, const ad::Array& b, bool ta, bool tb,
                                 std::int64_t batch, std::int64_t m, std::int64_t n,
                                 std::int64_t k) {
  const auto pa = a.astype(ad::DType::Float64);
  const auto pb = b.astype(ad::DType::Float64);
  const auto x = pa.data<double>();
  const auto y = pb.data<double>();
  std::vector<double> c;
  for (std::int64_t s = 0; s < batch; ++s) {
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (std::int64_t p = 0; p < k; ++p) {
          const double av = x[static_cast<std::size_t>(s * m * k + (ta ? p * m + i : i * k + p))];
          const double bv = y[static_cast<std::size_t>(s * k * n + (tb ? j * k + p : p * n + j))];
          acc += static_cast<long double>(av) * bv;
        }
        c.push_back(static_cast<double>(acc));
      }
    }
  }
  return c;
}

void check_product(std::vector<std::int64_t> batch_dims, std::int64_t m, std::int64_t n,
                   std::int64_t k, bool ta, bool tb, ad::DType dtype, double tolerance,
                   std::uint64_t seed) {
  const ad::Array a = random_array(stored(batch_dims, m, k, ta), seed).astype(dtype);
  const ad::Array b = random_array(stored(batch_dims, k, n, tb), seed + 1).astype(dtype);
  ad::Graph g;
  const auto c = ad::matmul(ad::constant(g, a), ad::constant(g, b), ta, tb);
  std::int64_t batch = 1;
  for (auto d : batch_dims) batch *= d;
  batch_dims.push_back(m);
  batch_dims.push_back(n);
  BOOST_TEST(c.shape() == ad::Shape(batch_dims));
  ad::Session s(g);
  const ad::Array got = s.eval(c);
  BOOST_TEST(got.shape() == ad::Shape(batch_dims));
  const auto want = naive_matmul(a, b, ta, tb, batch, m, n, k);
  double worst = 0;
  for (std::int64_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got.flat(i) - want[static_cast<std::size_t>(i)]));
  }
  BOOST_TEST(worst <= tolerance, "ta=" << ta << " tb=" << tb << " batch " << batch << " m=" << m
                                       << " n=" << n << " k=" << k << ": worst error " << worst);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(matmul_test)

BOOST_AUTO_TEST_CASE(values_match_naive_loops_for_all_transpose_flags) {
  std::uint64_t seed = 1;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      check_product({}, 7, 5, 3, ta, tb, ad::DType::Float64, 1e-14, seed += 2);
      check_product({}, 33, 17, 65, ta, tb, ad::DType::Float64, 1e-13, seed += 2);
      check_product({}, 33, 17, 65, ta, tb, ad::DType::Float32, 1e-5, seed += 2);
      check_product({}, 1, 1, 1, ta, tb, ad::DType::Float64, 1e-15, seed += 2);
      // m * n * k >= 2^21 with several 64-row blocks: gemm splits the rows of C across threads,
      // where op(A)'s rows start at different places with and without transpose_a.
      check_product({}, 200, 100, 120, ta, tb, ad::DType::Float64, 1e-13, seed += 2);
    }
  }
}

BOOST_AUTO_TEST_CASE(batched_values_match_naive_loops) {
  std::uint64_t seed = 100;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      check_product({4}, 6, 5, 7, ta, tb, ad::DType::Float64, 1e-14, seed += 2);
      check_product({2, 3}, 4, 9, 5, ta, tb, ad::DType::Float64, 1e-14, seed += 2);
      check_product({3}, 16, 8, 40, ta, tb, ad::DType::Float32, 1e-5, seed += 2);
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_inner_dimension_gives_zeros) {
  ad::Graph g;
  const auto a = ad::constant(g, ad::Array(ad::DType::Float64, {3, 0}));
  const auto b = ad::constant(g, ad::Array(ad::DType::Float64, {0, 2}));
  ad::Session s(g);
  const auto c = s.eval(ad::matmul(a, b));
  BOOST_TEST(c.shape() == ad::Shape({3, 2}));
  for (std::int64_t i = 0; i < c.size(); ++i) BOOST_TEST(c.flat(i) == 0.0);
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_first_and_second_order) {
  std::uint64_t seed = 200;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      BOOST_TEST_CONTEXT("ta=" << ta << " tb=" << tb) {
        const auto f = [&](const std::vector<ad::Tensor>& x) {
          return ad::matmul(x[0], x[1], ta, tb);
        };
        check_gradient(f,
                       {random_array(stored({}, 3, 4, ta), seed++),
                        random_array(stored({}, 4, 2, tb), seed++)},
                       1e-6, true);
        check_gradient(f,
                       {random_array(stored({2}, 3, 4, ta), seed++),
                        random_array(stored({2}, 4, 2, tb), seed++)},
                       1e-6, true);
        check_gradient(f,
                       {random_array(stored({2, 2}, 2, 3, ta), seed++),
                        random_array(stored({2, 2}, 3, 2, tb), seed++)},
                       1e-6, true);
      }
    }
  }
  // The same operand on both sides (x^T x) collects both contributions.
  check_gradient([](const std::vector<ad::Tensor>& x) { return ad::matmul(x[0], x[0], true); },
                 {random_array({4, 3}, seed++)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(static_shape_keeps_unknown_dims_and_runs_fed_shapes) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  const auto w = ad::constant(g, random_array({4, 3}, 5).astype(ad::DType::Float32));
  const auto y = ad::matmul(x, w);
  BOOST_TEST(y.shape() == ad::Shape({-1, 3}));
  const auto xb = ad::placeholder(g, ad::DType::Float64, {-1, 5, 4}, "xb");
  const auto wb = ad::placeholder(g, ad::DType::Float64, {-1, 6, 4}, "wb");
  BOOST_TEST(ad::matmul(xb, wb, false, true).shape() == ad::Shape({-1, 5, 6}));
  BOOST_TEST(ad::matmul(xb, xb, true, false).shape() == ad::Shape({-1, 4, 4}));
  ad::Session s(g);
  const auto out = s.eval(y, {{x, random_array({7, 4}, 6).astype(ad::DType::Float32)}});
  BOOST_TEST(out.shape() == ad::Shape({7, 3}));
}

BOOST_AUTO_TEST_CASE(rejects_mismatched_operands_with_clear_messages) {
  ad::Graph g;
  const auto a = ad::placeholder(g, ad::DType::Float32, {32, 64}, "a");
  const auto b = ad::placeholder(g, ad::DType::Float32, {128, 10}, "b");
  BOOST_CHECK_EXCEPTION((void)ad::matmul(a, b), ad::ValueError,
                        (MessageHas{{"matmul 'MatMul': inner dimensions differ: lhs is [32, 64], "
                                     "rhs is [128, 10] (64 != 128)"}}));
  BOOST_CHECK_EXCEPTION((void)ad::matmul(a, b, true, true), ad::ValueError,
                        (MessageHas{{"(32 != 10, transpose_a and transpose_b)"}}));
  const auto d = ad::placeholder(g, ad::DType::Float64, {64, 10}, "d");
  BOOST_CHECK_EXCEPTION((void)ad::matmul(a, d), ad::ValueError,
                        (MessageHas{{"matmul 'MatMul'", "different dtypes", "float32[32, 64]",
                                     "float64[64, 10]", "ad::cast"}}));
  const auto v = ad::placeholder(g, ad::DType::Float32, {64}, "v");
  BOOST_CHECK_EXCEPTION((void)ad::matmul(a, v), ad::ValueError,
                        (MessageHas{{"matmul 'MatMul'", "rank >= 2", "[64]"}}));
  const auto x3 = ad::placeholder(g, ad::DType::Float32, {4, 32, 64}, "x3");
  const auto y3 = ad::placeholder(g, ad::DType::Float32, {5, 64, 10}, "y3");
  BOOST_CHECK_EXCEPTION((void)ad::matmul(x3, y3), ad::ValueError,
                        (MessageHas{{"matmul 'BatchMatMulV2'", "batch dimensions differ",
                                     "[4, 32, 64]", "[5, 64, 10]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::matmul(x3, ad::placeholder(g, ad::DType::Float32, {64, 10})),
                        ad::ValueError,
                        (MessageHas{{"different ranks", "[4, 32, 64]", "[64, 10]"}}));
  const auto i = ad::placeholder(g, ad::DType::Int64, {2, 2}, "i");
  BOOST_CHECK_EXCEPTION((void)ad::matmul(i, i), ad::ValueError,
                        (MessageHas{{"matmul", "int64", "float32 or float64"}}));
}

BOOST_AUTO_TEST_CASE(rejects_mismatched_fed_shapes_at_run_time) {
  ad::Graph g;
  const auto a = ad::placeholder(g, ad::DType::Float64, {2, -1}, "a");
  const auto b = ad::placeholder(g, ad::DType::Float64, {-1, 3}, "b");
  const auto c = ad::matmul(a, b);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(c, {{a, random_array({2, 4}, 1)}, {b, random_array({5, 3}, 2)}}),
      ad::InvalidArgumentError,
      (MessageHas{{"MatMul 'MatMul'", "inner dimensions differ", "[2, 4]", "[5, 3]", "4 != 5"}}));
}

BOOST_AUTO_TEST_CASE(products_are_bitwise_identical_for_one_and_two_threads) {
  // OpenBLAS's own threading changes the bits of some products (e.g. 288x464 times 464x64
  // transposed); gradtape's fixed row blocks must not.
  for (const bool tb : {false, true}) {
    std::vector<ad::Array> results;
    for (const int threads : {1, 2}) {
      ad::set_num_threads(threads);
      ad::Graph g;
      auto a = ad::constant(g, random_array({288, 464}, 7).astype(ad::DType::Float32));
      auto b = ad::constant(
          g,
          random_array(tb ? ad::Shape{64, 464} : ad::Shape{464, 64}, 8).astype(ad::DType::Float32));
      ad::Session s(g);
      results.push_back(s.eval(ad::matmul(a, b, false, tb)));
    }
    ad::set_num_threads(2);
    BOOST_TEST(results[0].bitwise_equal(results[1]));
  }
}

BOOST_AUTO_TEST_SUITE_END()
