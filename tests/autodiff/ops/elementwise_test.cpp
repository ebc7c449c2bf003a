// Elementwise ops: values against closed forms, gradients (first and second order) against float64
// central differences, broadcasting, and error messages.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::random_array;

namespace {
using Fn = std::function<ad::Tensor(const ad::Tensor&)>;
using Fn2 = std::function<ad::Tensor(const ad::Tensor&, const ad::Tensor&)>;

void check_unary(const Fn& f, double lo, double hi, std::uint64_t seed) {
  check_gradient([&](const std::vector<ad::Tensor>& x) { return f(x[0]); },
                 {random_array({3, 4}, seed, lo, hi)}, 1e-6, true);
}
void check_binary(const Fn2& f, const ad::Shape& a, const ad::Shape& b, double lo, double hi,
                  std::uint64_t seed) {
  check_gradient([&](const std::vector<ad::Tensor>& x) { return f(x[0], x[1]); },
                 {random_array(a, seed, lo, hi), random_array(b, seed + 1, lo, hi)}, 1e-6, true);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(elementwise_test)

BOOST_AUTO_TEST_CASE(values_match_closed_forms) {
  ad::Graph g;
  auto a = ad::constant(g, ad::Array::from<double>({1, -2, 3, 4}, {2, 2}));
  auto b = ad::constant(g, ad::Array::from<double>({10, 20}, {2}));
  ad::Session s(g);
  const auto out =
      s.run({a + b, a * b, a - b, a / b, ad::maximum(a, b * 0.1), ad::relu(a), ad::square(a)});
  BOOST_TEST(out[0].at({1, 1}) == 24.0);
  BOOST_TEST(out[1].at({0, 1}) == -40.0);
  BOOST_TEST(out[2].at({1, 0}) == -7.0);
  BOOST_TEST(out[3].at({1, 1}) == 0.2);
  BOOST_TEST(out[4].at({0, 1}) == 2.0);
  BOOST_TEST(out[4].at({1, 0}) == 3.0);
  BOOST_TEST(out[5].at({0, 1}) == 0.0);
  BOOST_TEST(out[6].at({1, 1}) == 16.0);
}

BOOST_AUTO_TEST_CASE(broadcasting_follows_numpy_rules) {
  ad::Graph g;
  auto a = ad::constant(g, ad::Array::from<double>({1, 2, 3}, {3, 1}));
  auto b = ad::constant(g, ad::Array::from<double>({10, 20}, {1, 2}));
  ad::Session s(g);
  const auto y = s.eval(a + b);
  BOOST_TEST(y.shape() == ad::Shape({3, 2}));
  BOOST_TEST(y.at({2, 1}) == 23.0);
  BOOST_TEST(y.at({0, 0}) == 11.0);
}

BOOST_AUTO_TEST_CASE(unary_gradients_match_finite_differences) {
  check_unary([](const ad::Tensor& x) { return ad::neg(x); }, -2, 2, 1);
  check_unary([](const ad::Tensor& x) { return ad::abs(x); }, 0.1, 2, 2);
  check_unary([](const ad::Tensor& x) { return ad::exp(x); }, -2, 2, 3);
  check_unary([](const ad::Tensor& x) { return ad::log(x); }, 0.5, 3, 4);
  check_unary([](const ad::Tensor& x) { return ad::sqrt(x); }, 0.5, 3, 5);
  check_unary([](const ad::Tensor& x) { return ad::rsqrt(x); }, 0.5, 3, 6);
  check_unary([](const ad::Tensor& x) { return ad::square(x); }, -2, 2, 7);
  check_unary([](const ad::Tensor& x) { return ad::reciprocal(x); }, 0.5, 3, 8);
  check_unary([](const ad::Tensor& x) { return ad::relu(x); }, 0.1, 2, 9);
  check_unary([](const ad::Tensor& x) { return ad::sigmoid(x); }, -3, 3, 10);
  check_unary([](const ad::Tensor& x) { return ad::tanh(x); }, -2, 2, 11);
  check_unary([](const ad::Tensor& x) { return ad::softplus(x); }, -3, 3, 12);
}

BOOST_AUTO_TEST_CASE(binary_gradients_match_finite_differences_with_broadcasting) {
  const ad::Shape full{2, 3, 4};
  const ad::Shape row{3, 1};
  check_binary([](auto a, auto b) { return ad::add(a, b); }, full, row, -1, 1, 20);
  check_binary([](auto a, auto b) { return ad::sub(a, b); }, row, full, -1, 1, 22);
  check_binary([](auto a, auto b) { return ad::mul(a, b); }, full, {4}, -1, 1, 24);
  check_binary([](auto a, auto b) { return ad::div(a, b); }, full, row, 0.5, 2, 26);
  check_binary([](auto a, auto b) { return ad::pow(a, b); }, full, row, 0.5, 2, 28);
  check_binary([](auto a, auto b) { return ad::squared_difference(a, b); }, full, {}, -1, 1, 30);
  check_binary([](auto a, auto b) { return ad::maximum(a, b); }, full, full, -1, 1, 32);
  check_binary([](auto a, auto b) { return ad::minimum(a, b); }, full, full, -1, 1, 34);
}

BOOST_AUTO_TEST_CASE(sigmoid_and_softplus_do_not_overflow) {
  ad::Graph g;
  auto x = ad::constant(g, ad::Array::from<float>({-1000.f, 1000.f}, {2}));
  ad::Session s(g);
  const auto out = s.run({ad::sigmoid(x), ad::softplus(x)});
  BOOST_TEST(out[0].data<float>()[0] == 0.f);
  BOOST_TEST(out[0].data<float>()[1] == 1.f);
  BOOST_TEST(out[1].data<float>()[0] == 0.f);
  BOOST_TEST(out[1].data<float>()[1] == 1000.f);
}

BOOST_AUTO_TEST_CASE(comparisons_and_cast) {
  ad::Graph g;
  auto a = ad::constant(g, ad::Array::from<double>({1, 2, 3}, {3}));
  auto b = ad::constant(g, ad::Array::from<double>({2, 2, 2}, {3}));
  ad::Session s(g);
  const auto out = s.run(
      {ad::cast(ad::less(a, b), ad::DType::Float32), ad::cast(ad::equal(a, b), ad::DType::Int64)});
  BOOST_TEST(out[0].data<float>()[0] == 1.f);
  BOOST_TEST(out[0].data<float>()[2] == 0.f);
  BOOST_TEST(out[1].data<std::int64_t>()[1] == 1);
}

BOOST_AUTO_TEST_CASE(rejects_incompatible_shapes_and_dtypes) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {2, 3}, "a");
  auto b = ad::placeholder(g, ad::DType::Float32, {4}, "b");
  auto c = ad::placeholder(g, ad::DType::Float64, {2, 3}, "c");
  BOOST_CHECK_EXCEPTION((void)(a + b), ad::ValueError,
                        (ad::testing::MessageHas{{"Add", "[2, 3]", "[4]"}}));
  BOOST_CHECK_EXCEPTION((void)(a * c), ad::ValueError,
                        (ad::testing::MessageHas{{"Mul", "float32", "float64", "'a:0'", "'c:0'"}}));
}

BOOST_AUTO_TEST_CASE(runtime_broadcast_mismatch_names_node_and_shapes) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "a");
  auto b = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "b");
  auto y = ad::add(a, b);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(y, {{a, ad::Array(ad::DType::Float32, {2, 3})},
                                   {b, ad::Array(ad::DType::Float32, {4, 3})}}),
                        ad::InvalidArgumentError,
                        (ad::testing::MessageHas{{"Add 'Add'", "[2, 3]", "[4, 3]"}}));
  // The session stays usable after the error.
  const auto ok = s.eval(
      y, {{a, ad::Array(ad::DType::Float32, {2, 3})}, {b, ad::Array(ad::DType::Float32, {1, 3})}});
  BOOST_TEST(ok.shape() == ad::Shape({2, 3}));
}

BOOST_AUTO_TEST_SUITE_END()
