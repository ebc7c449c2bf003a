// Adversarial op inputs, one class per case: checked integer arithmetic (TF's errors for a zero
// divisor and negative integer powers, overflow as an error, exact int64 pow), NaN propagation
// through relu, maximum and minimum, and shape arithmetic that cannot wrap (tile, pad, reshape,
// fill, one_hot). Each case asserts the exact error type and message fragments, then runs the same
// session again with good inputs to show it survived.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::Array;
using ad::DType;
using ad::testing::MessageHas;

namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

Array ints(const std::vector<std::int64_t>& v) {
  return Array::from(v, {static_cast<std::int64_t>(v.size())});
}

// a op b on fed int64 vectors.
struct IntegerBinary {
  ad::Graph g;
  ad::Tensor a = ad::placeholder(g, DType::Int64, {-1}, "a");
  ad::Tensor b = ad::placeholder(g, DType::Int64, {-1}, "b");
  ad::Tensor quotient = ad::div(a, b);
  ad::Tensor power = ad::pow(a, b);
  ad::Session s{g};
  Array run(const ad::Tensor& t, const std::vector<std::int64_t>& x,
            const std::vector<std::int64_t>& y) {
    return s.run({t}, {{a, ints(x)}, {b, ints(y)}})[0];
  }
};

// Exact integer power, computed independently of the kernel (by repeated multiplication).
std::int64_t slow_power(std::int64_t base, int exponent) {
  std::int64_t r = 1;
  for (int i = 0; i < exponent; ++i) r *= base;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(op_inputs_test)

BOOST_AUTO_TEST_CASE(integer_division_by_zero_and_int64_min_by_minus_one_are_errors) {
  IntegerBinary f;
  BOOST_CHECK_EXCEPTION((void)f.run(f.quotient, {7, 8}, {2, 0}), ad::InvalidArgumentError,
                        MessageHas({"RealDiv", "integer division by zero"}));
  BOOST_CHECK_EXCEPTION((void)f.run(f.quotient, {kMin}, {-1}), ad::InvalidArgumentError,
                        MessageHas({"RealDiv", "integer overflow"}));
  BOOST_CHECK_EXCEPTION((void)f.run(f.quotient, {kMin, 4}, {-1}), ad::InvalidArgumentError,
                        MessageHas({"integer overflow"}));  // the broadcast path
  const Array ok = f.run(f.quotient, {7, -7, kMin, kMax}, {2, 2, 1, -1});
  BOOST_TEST(ok.data<std::int64_t>()[0] == 3);
  BOOST_TEST(ok.data<std::int64_t>()[1] == -3);  // truncating, as C++ and TF's truncatediv
  BOOST_TEST(ok.data<std::int64_t>()[2] == kMin);
  BOOST_TEST(ok.data<std::int64_t>()[3] == -kMax);
}

BOOST_AUTO_TEST_CASE(integer_pow_is_exact_and_rejects_negative_exponents_and_overflow) {
  IntegerBinary f;
  BOOST_CHECK_EXCEPTION((void)f.run(f.power, {2}, {-1}), ad::InvalidArgumentError,
                        MessageHas({"Pow", "negative integer powers"}));
  BOOST_CHECK_EXCEPTION((void)f.run(f.power, {10}, {30}), ad::InvalidArgumentError,
                        MessageHas({"Pow", "integer overflow"}));
  BOOST_CHECK_EXCEPTION((void)f.run(f.power, {2}, {63}), ad::InvalidArgumentError,
                        MessageHas({"integer overflow"}));
  const Array ok = f.run(f.power, {3, -3, 10, -2, 0, 7}, {39, 39, 18, 63, 0, 1});
  const auto v = ok.data<std::int64_t>();
  BOOST_TEST(v[0] == slow_power(3, 39));  // 4052555153018976267: through double it was off by 11
  BOOST_TEST(v[1] == -slow_power(3, 39));
  BOOST_TEST(v[2] == slow_power(10, 18));
  BOOST_TEST(v[3] == kMin);  // (-2)^63 fits exactly
  BOOST_TEST(v[4] == 1);
  BOOST_TEST(v[5] == 7);
}

BOOST_AUTO_TEST_CASE(relu_maximum_and_minimum_propagate_nan_on_either_side) {
  ad::Graph g;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto x = ad::placeholder(g, DType::Float64, {3}, "x");
  auto zero = ad::scalar(g, 0.0, DType::Float64);
  const std::vector<ad::Tensor> outs = {ad::relu(x), ad::maximum(x, zero), ad::maximum(zero, x),
                                        ad::minimum(x, zero), ad::minimum(zero, x)};
  ad::Session s(g);
  const auto r = s.run(outs, {{x, Array::from<double>({nan, -1, 2}, {3})}});
  for (std::size_t k = 0; k < r.size(); ++k) {
    BOOST_TEST_CONTEXT("output " << k) {
      BOOST_TEST(std::isnan(r[k].flat(0)));
      BOOST_TEST(!std::isnan(r[k].flat(1)));
      BOOST_TEST(!std::isnan(r[k].flat(2)));
    }
  }
  BOOST_TEST(r[0].flat(1) == 0.0);
  BOOST_TEST(r[1].flat(2) == 2.0);
  BOOST_TEST(r[4].flat(1) == -1.0);
  // check_numerics downstream now sees the NaN.
  auto checked = ad::check_numerics(ad::relu(x), "after relu");
  BOOST_CHECK_THROW((void)s.run({checked}, {{x, Array::from<double>({nan, 1, 2}, {3})}}),
                    ad::InvalidArgumentError);
  BOOST_TEST(s.run({checked}, {{x, Array::from<double>({0, 1, 2}, {3})}})[0].flat(1) == 1.0);
}

BOOST_AUTO_TEST_CASE(float32_relu_and_maximum_propagate_nan) {
  ad::Graph g;
  auto x = ad::placeholder(g, DType::Float32, {2}, "x");
  auto zero = ad::scalar(g, 0.0, DType::Float32);
  ad::Session s(g);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto r = s.run({ad::relu(x), ad::maximum(x, zero), ad::minimum(zero, x)},
                       {{x, Array::from<float>({nan, -1.0F}, {2})}});
  for (const auto& a : r) BOOST_TEST(std::isnan(a.flat(0)));
}

BOOST_AUTO_TEST_CASE(tile_of_a_fed_tensor_by_two_to_the_62_is_an_error_naming_the_op) {
  ad::Graph g;
  auto x = ad::placeholder(g, DType::Float32, {-1, 1}, "x");
  auto tiled = ad::tile(x, {std::int64_t{1} << 62, 1});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION((void)s.run({tiled}, {{x, Array(DType::Float32, {4, 1})}}),
                        ad::InvalidArgumentError, MessageHas({"Tile", "overflows int64"}));
  // The same session still runs a fitting feed.
  BOOST_TEST(s.run({tiled}, {{x, Array(DType::Float32, {0, 1})}})[0].size() == 0);
  auto small = ad::tile(x, {2, 3});
  BOOST_TEST(s.run({small}, {{x, Array(DType::Float32, {4, 1})}})[0].shape() == ad::Shape({8, 3}));
}

BOOST_AUTO_TEST_CASE(overflowing_static_shapes_are_value_errors_naming_the_op) {
  ad::Graph g;
  auto x = ad::placeholder(g, DType::Float32, {4, 1}, "x");
  const std::int64_t big = std::int64_t{1} << 62;
  BOOST_CHECK_EXCEPTION((void)ad::tile(x, {big, 1}), ad::ValueError,
                        MessageHas({"tile 'Tile'", "overflows int64"}));
  BOOST_CHECK_EXCEPTION((void)ad::tile(x, {big / 4, 8}), ad::ValueError,
                        MessageHas({"tile 'Tile'", "more elements than fit in int64"}));
  BOOST_CHECK_EXCEPTION((void)ad::pad(x, {{kMax, 0}, {0, 0}}), ad::ValueError,
                        MessageHas({"pad 'Pad'", "overflows int64"}));
  BOOST_CHECK_EXCEPTION((void)ad::reshape(x, ad::Shape({big, 8, -1})), ad::ValueError,
                        MessageHas({"reshape 'Reshape'", "more elements than fit in int64"}));
  auto idx = ad::placeholder(g, DType::Int64, {big}, "idx");
  BOOST_CHECK_EXCEPTION((void)ad::one_hot(idx, 8), ad::ValueError,
                        MessageHas({"one_hot 'OneHot'", "more elements than fit in int64"}));
  BOOST_CHECK_EXCEPTION((void)ad::random_uniform(g, ad::Shape({big, 4})), ad::ValueError,
                        MessageHas({"random_uniform", "more elements than fit in int64"}));
  auto huge = ad::placeholder(g, DType::Float32, {big, 0}, "huge");
  BOOST_CHECK_EXCEPTION((void)ad::concat({huge, huge}, 0), ad::ValueError,
                        MessageHas({"concat 'concat'", "overflows int64"}));
  // The graph is still usable.
  ad::Session s(g);
  BOOST_TEST(s.run({ad::tile(x, {2, 2})}, {{x, Array(DType::Float32, {4, 1})}})[0].size() == 16);
}

BOOST_AUTO_TEST_CASE(run_time_shape_tensors_that_overflow_are_errors_naming_the_op) {
  ad::Graph g;
  auto dims = ad::placeholder(g, DType::Int64, {2}, "dims");
  auto filled = ad::fill(dims, 1.0);
  auto x = ad::placeholder(g, DType::Float32, {-1}, "x");
  auto reshaped = ad::reshape(x, dims);
  ad::Session s(g);
  const std::int64_t big = std::int64_t{1} << 62;
  BOOST_CHECK_EXCEPTION((void)s.run({filled}, {{dims, ints({big, 8})}}), ad::InvalidArgumentError,
                        MessageHas({"Fill", "more elements than fit in int64"}));
  BOOST_CHECK_EXCEPTION(
      (void)s.run({reshaped}, {{dims, ints({big, 8})}, {x, Array(DType::Float32, {4})}}),
      ad::InvalidArgumentError, MessageHas({"Reshape", "more elements than fit in int64"}));
  BOOST_TEST(s.run({filled}, {{dims, ints({2, 3})}})[0].size() == 6);
}

// C++ leaves a NaN or out-of-range float converted to int64 undefined (a sanitizer stops there, a
// compiler may give anything); Cast and Array::astype give INT64_MIN, x86's "integer indefinite"
// that TF's CPU kernel returns, and exact values inside the range.
BOOST_AUTO_TEST_CASE(nan_and_out_of_range_floats_cast_to_int64_min) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> in{std::nan(""),
                               inf,
                               -inf,
                               1e19,
                               -1e19,
                               9223372036854775808.0,
                               -9223372036854775808.0,
                               2.75,
                               -2.75,
                               4503599627370497.0};
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  const std::vector<std::int64_t> want{kMin, kMin, kMin, kMin, kMin,
                                       kMin, kMin, 2,    -2,   4503599627370497};
  const auto n = static_cast<std::int64_t>(in.size());
  ad::Graph g;
  auto x = ad::placeholder(g, DType::Float64, {-1}, "x");
  auto x32 = ad::placeholder(g, DType::Float32, {-1}, "x32");
  ad::Session s(g);
  const auto got = s.eval(ad::cast(x, DType::Int64), {{x, Array::from<double>(in, {n})}});
  const auto got_vec = got.data<std::int64_t>();
  BOOST_TEST(std::vector<std::int64_t>(got_vec.begin(), got_vec.end()) == want,
             boost::test_tools::per_element());
  const Array direct = Array::from<double>(in, {n}).astype(DType::Int64);
  const auto direct_vec = direct.data<std::int64_t>();
  BOOST_TEST(std::vector<std::int64_t>(direct_vec.begin(), direct_vec.end()) == want,
             boost::test_tools::per_element());
  const auto f32 = s.eval(ad::cast(x32, DType::Int64),
                          {{x32, Array::from<float>({std::nanf(""), 3e19f, -0.5f}, {3})}});
  BOOST_TEST(f32.data<std::int64_t>()[0] == kMin);
  BOOST_TEST(f32.data<std::int64_t>()[1] == kMin);
  BOOST_TEST(f32.data<std::int64_t>()[2] == 0);
}

// Reductions with nothing to reduce where the result needs a value are errors naming the op.
BOOST_AUTO_TEST_CASE(reducing_zero_elements_to_a_value_is_an_error) {
  ad::Graph g;
  auto i = ad::placeholder(g, DType::Int64, {-1}, "i");
  auto f = ad::placeholder(g, DType::Float32, {-1, 3}, "f");
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION((void)s.eval(ad::reduce_mean(i), {{i, Array(DType::Int64, {0})}}),
                        ad::InvalidArgumentError, (MessageHas{{"Mean '", "zero elements"}}));
  BOOST_CHECK_EXCEPTION((void)s.eval(ad::reduce_max(f, {0}), {{f, Array(DType::Float32, {0, 3})}}),
                        ad::InvalidArgumentError, (MessageHas{{"Max '", "zero elements"}}));
  // Summing nothing is 0, and the session goes on.
  BOOST_TEST(s.eval(ad::reduce_sum(i), {{i, Array(DType::Int64, {0})}}).item<std::int64_t>() == 0);
  BOOST_TEST(s.eval(ad::reduce_mean(i), {{i, Array::from<std::int64_t>({3, 4}, {2})}})
                 .item<std::int64_t>() == 3);
}

// A histogram's values fetched outside a run (Merged::serialize) are checked as the op checks them:
// a NaN or infinite value fell past the last bucket and wrote beyond the counts.
BOOST_AUTO_TEST_CASE(a_merged_histogram_of_nan_or_inf_is_an_invalid_argument) {
  ad::Graph g;
  auto h = ad::placeholder(g, ad::DType::Float64, {-1}, "h");
  const auto merged = ad::summary::merge({ad::summary::histogram("weights", h)});
  for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    const std::vector<ad::Array> values{ad::Array::from<double>({1.0, bad}, {2})};
    BOOST_CHECK_EXCEPTION((void)merged.serialize(values), ad::InvalidArgumentError,
                          (MessageHas{{"summary::Merged 'weights'", "Nan in summary histogram"}}));
  }
  const std::vector<ad::Array> finite{ad::Array::from<double>({1.0, 2.0}, {2})};
  BOOST_TEST(!merged.serialize(finite).empty());
  ad::Session s(g);
  BOOST_CHECK_THROW((void)merged.run(s, {{h, ad::Array::from<double>({std::nan("")}, {1})}}),
                    ad::InvalidArgumentError);
  BOOST_TEST(!merged.run(s, {{h, ad::Array::from<double>({0.5}, {1})}}).empty());
}

BOOST_AUTO_TEST_SUITE_END()
