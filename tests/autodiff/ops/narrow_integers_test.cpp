// Int32 and UInt8: feeds and fetches, Cast to and from every dtype with TF's CPU rules for floats
// out of range, comparisons, gather/one_hot indices, sparse cross-entropy labels, variables and
// checkpoints, and the error every other op gives (naming the op and the dtype). Expected values
// are closed forms written out by hand.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

constexpr std::int32_t kInt32Min = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

template <class T>
std::vector<T> values_of(const ad::Array& a) {
  const auto span = a.data<T>();
  return {span.begin(), span.end()};
}

// cast(constant(in), to) run in a session.
ad::Array run_cast(const ad::Array& in, ad::DType to) {
  ad::Graph g;
  ad::Session s(g);
  return s.eval(ad::cast(ad::constant(g, in), to));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(narrow_integers_test)

BOOST_AUTO_TEST_CASE(names_sizes_and_arrays) {
  BOOST_TEST(ad::dtype_name(ad::DType::Int32) == "int32");
  BOOST_TEST(ad::dtype_name(ad::DType::UInt8) == "uint8");
  BOOST_TEST(ad::dtype_size(ad::DType::Int32) == 4U);
  BOOST_TEST(ad::dtype_size(ad::DType::UInt8) == 1U);
  BOOST_TEST(!ad::is_floating(ad::DType::Int32));
  BOOST_TEST(ad::is_integer(ad::DType::UInt8));
  BOOST_TEST(!ad::is_narrow_integer(ad::DType::Int64));
  const auto a = ad::Array::from<std::int32_t>({-7, 0, 2147483647}, {3});
  BOOST_TEST(a.dtype() == ad::DType::Int32);
  BOOST_TEST(a.nbytes() == 12U);
  BOOST_TEST(a.at({2}) == 2147483647.0);
  const auto b = ad::Array::from<std::uint8_t>({0, 200, 255}, {1, 3});
  BOOST_TEST(b.at({0, 1}) == 200.0);
  BOOST_TEST(b.to_string() == "uint8[1, 3] [[0, 200, 255]]");
  BOOST_TEST(values_of<std::int32_t>(ad::Array::full(ad::DType::Int32, {2}, -3.9)) ==
                 (std::vector<std::int32_t>{-3, -3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(placeholders_feed_and_fetch_bit_for_bit) {
  ad::Graph g;
  const auto labels = ad::placeholder(g, ad::DType::Int32, {-1}, "labels");
  const auto images = ad::placeholder(g, ad::DType::UInt8, {-1, 2, 2}, "images");
  const auto flat = ad::reshape(images, ad::Shape{-1, 4});
  ad::Session s(g);
  const auto l = ad::Array::from<std::int32_t>({3, -1, 9}, {3});
  const auto i = ad::Array::from<std::uint8_t>({0, 1, 254, 255, 7, 8, 9, 10}, {2, 2, 2});
  const auto out =
      s.run({ad::identity(labels), flat, ad::shape(images)}, {{labels, l}, {images, i}});
  BOOST_TEST(out[0].bitwise_equal(l));
  BOOST_TEST(out[1].dtype() == ad::DType::UInt8);
  BOOST_TEST(out[1].shape() == ad::Shape({2, 4}));
  BOOST_TEST(values_of<std::uint8_t>(out[1]) == values_of<std::uint8_t>(i),
             boost::test_tools::per_element());
  BOOST_TEST(values_of<std::int64_t>(out[2]) == (std::vector<std::int64_t>{2, 2, 2}),
             boost::test_tools::per_element());
  // Feeding another dtype is refused as for the other dtypes.
  BOOST_CHECK_THROW(
      (void)s.eval(ad::identity(labels), {{labels, ad::Array::from<std::int64_t>({1}, {1})}}),
      ad::Error);
}

// TF's CPU kernel truncates toward zero; a NaN or a value outside int32 gives INT32_MIN (x86's
// integer indefinite), and uint8 takes that int32 modulo 256 (tensorflow/tensorflow#59702 shows
// -1.0 -> 255; #12235 shows 1e10 -> -2147483648 as int32).
BOOST_AUTO_TEST_CASE(cast_from_floats_follows_tfs_cpu_rules) {
  const std::vector<double> in{1.9, -1.9, 0.5, -0.5, 2147483520.0, 3e9, -3e9, kNaN, kInf, -kInf};
  for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    const auto x = ad::Array::vector(in).astype(dtype);
    BOOST_TEST(values_of<std::int32_t>(run_cast(x, ad::DType::Int32)) ==
                   (std::vector<std::int32_t>{1, -1, 0, 0, 2147483520, kInt32Min, kInt32Min,
                                              kInt32Min, kInt32Min, kInt32Min}),
               boost::test_tools::per_element());
    BOOST_TEST(values_of<std::int64_t>(run_cast(x, ad::DType::Int64)) ==
                   (std::vector<std::int64_t>{1, -1, 0, 0, 2147483520, 3000000000, -3000000000,
                                              kInt64Min, kInt64Min, kInt64Min}),
               boost::test_tools::per_element());
  }
  const auto pixels = ad::Array::vector<double>({0, 255, 255.9, 256, 300.7, -1, -1.5, kNaN, 1e10});
  const std::vector<std::uint8_t> wrapped{0, 255, 255, 0, 44, 255, 255, 0, 0};
  for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    BOOST_TEST(values_of<std::uint8_t>(run_cast(pixels.astype(dtype), ad::DType::UInt8)) == wrapped,
               boost::test_tools::per_element());
  }
  // Array::astype converts the same way.
  BOOST_TEST(values_of<std::uint8_t>(pixels.astype(ad::DType::UInt8)) == wrapped,
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cast_between_integers_wraps_and_widens_exactly) {
  const auto wide = ad::Array::vector<std::int64_t>({2147483648LL, 4294967301LL, -1, 263, 40000});
  BOOST_TEST(values_of<std::int32_t>(run_cast(wide, ad::DType::Int32)) ==
                 (std::vector<std::int32_t>{kInt32Min, 5, -1, 263, 40000}),
             boost::test_tools::per_element());
  BOOST_TEST(values_of<std::uint8_t>(run_cast(wide, ad::DType::UInt8)) ==
                 (std::vector<std::uint8_t>{0, 5, 255, 7, 64}),
             boost::test_tools::per_element());
  const auto i32 = ad::Array::vector<std::int32_t>({-1, 0, 200, 2147483647});
  BOOST_TEST(values_of<std::uint8_t>(run_cast(i32, ad::DType::UInt8)) ==
                 (std::vector<std::uint8_t>{255, 0, 200, 255}),
             boost::test_tools::per_element());
  BOOST_TEST(values_of<std::int64_t>(run_cast(i32, ad::DType::Int64)) ==
                 (std::vector<std::int64_t>{-1, 0, 200, 2147483647}),
             boost::test_tools::per_element());
  BOOST_TEST(values_of<double>(run_cast(i32, ad::DType::Float64)) ==
                 (std::vector<double>{-1, 0, 200, 2147483647}),
             boost::test_tools::per_element());
  BOOST_TEST(values_of<float>(run_cast(i32, ad::DType::Float32)) ==
                 (std::vector<float>{-1, 0, 200, 2147483648.0F}),
             boost::test_tools::per_element());
  const auto u8 = ad::Array::vector<std::uint8_t>({0, 1, 200, 255});
  BOOST_TEST(values_of<std::int32_t>(run_cast(u8, ad::DType::Int32)) ==
                 (std::vector<std::int32_t>{0, 1, 200, 255}),
             boost::test_tools::per_element());
  BOOST_TEST(
      values_of<float>(run_cast(u8, ad::DType::Float32)) == (std::vector<float>{0, 1, 200, 255}),
      boost::test_tools::per_element());
  const auto as_bool = run_cast(ad::Array::vector<std::int32_t>({0, -3, 1}), ad::DType::Bool);
  BOOST_TEST(as_bool.at({0}) == 0.0);
  BOOST_TEST(as_bool.at({1}) == 1.0);
  BOOST_TEST(
      values_of<std::uint8_t>(run_cast(ad::Array::vector<bool>({true, false}), ad::DType::UInt8)) ==
          (std::vector<std::uint8_t>{1, 0}),
      boost::test_tools::per_element());
}

// uint8 compares as unsigned (200 > 100), int32 as signed; scalars broadcast.
BOOST_AUTO_TEST_CASE(comparisons_take_int32_and_uint8) {
  ad::Graph g;
  const auto u = ad::constant(g, ad::Array::vector<std::uint8_t>({0, 100, 200, 255}));
  const auto v = ad::constant(g, ad::Array::vector<std::uint8_t>({0, 200, 100, 255}));
  const auto i = ad::constant(g, ad::Array::from<std::int32_t>({-5, 0, 5, 7, 8, 9}, {2, 3}));
  const auto seven = ad::scalar(g, 7, ad::DType::Int32);
  ad::Session s(g);
  const auto out = s.run({ad::less(u, v), ad::greater(u, v), ad::equal(u, v), ad::not_equal(u, v),
                          ad::less_equal(i, seven), ad::greater_equal(i, seven)});
  const auto bools = [](const ad::Array& a) {
    std::vector<int> flags;
    for (std::int64_t k = 0; k < a.size(); ++k) flags.push_back(static_cast<int>(a.flat(k)));
    return flags;
  };
  BOOST_TEST(bools(out[0]) == (std::vector<int>{0, 1, 0, 0}), boost::test_tools::per_element());
  BOOST_TEST(bools(out[1]) == (std::vector<int>{0, 0, 1, 0}), boost::test_tools::per_element());
  BOOST_TEST(bools(out[2]) == (std::vector<int>{1, 0, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST(bools(out[3]) == (std::vector<int>{0, 1, 1, 0}), boost::test_tools::per_element());
  BOOST_TEST(bools(out[4]) == (std::vector<int>{1, 1, 1, 1, 0, 0}),
             boost::test_tools::per_element());
  BOOST_TEST(out[5].shape() == ad::Shape({2, 3}));
  BOOST_TEST(bools(out[5]) == (std::vector<int>{0, 0, 0, 1, 1, 1}),
             boost::test_tools::per_element());
}

// The gradient of sum(gather(params, idx) * w) is w's rows added at idx: row 2 gets rows 0 and 2.
BOOST_AUTO_TEST_CASE(gather_and_one_hot_take_int32_and_uint8_indices) {
  for (const auto dtype : {ad::DType::Int32, ad::DType::UInt8, ad::DType::Int64}) {
    ad::Graph g;
    const auto params = ad::constant(g, ad::Array::from<double>({0, 1, 10, 11, 20, 21}, {3, 2}));
    const auto idx = ad::placeholder(g, dtype, {3}, "idx");
    const auto w = ad::constant(g, ad::Array::from<double>({1, 2, 3, 4, 5, 6}, {3, 2}));
    const auto rows = ad::gather(params, idx);
    const auto grad = ad::gradients(ad::reduce_sum(rows * w), {params})[0];
    const auto hot = ad::one_hot(idx, 4, 1.0, 0.0, ad::DType::Float32);
    const auto hot_int = ad::one_hot(idx, 3, 5.0, -1.0, ad::DType::Int32);
    ad::Session s(g);
    const auto out = s.run({rows, grad, hot, hot_int},
                           {{idx, ad::Array::vector<std::int64_t>({2, 0, 2}).astype(dtype)}});
    BOOST_TEST(values_of<double>(out[0]) == (std::vector<double>{20, 21, 0, 1, 20, 21}),
               boost::test_tools::per_element());
    BOOST_TEST(values_of<double>(out[1]) == (std::vector<double>{3, 4, 0, 0, 6, 8}),
               boost::test_tools::per_element());
    BOOST_TEST(values_of<float>(out[2]) == (std::vector<float>{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0}),
               boost::test_tools::per_element());
    BOOST_TEST(values_of<std::int32_t>(out[3]) ==
                   (std::vector<std::int32_t>{-1, -1, 5, 5, -1, -1, -1, -1, 5}),
               boost::test_tools::per_element());
    // An index past the axis is an InvalidArgumentError naming it, whatever its dtype.
    BOOST_CHECK_EXCEPTION(
        (void)s.eval(rows, {{idx, ad::Array::vector<std::int64_t>({0, 3, 1}).astype(dtype)}}),
        ad::InvalidArgumentError, (MessageHas{{"GatherV2", "indices[1] = 3", "not in [0, 3)"}}));
  }
  ad::Graph g;
  const auto table = ad::constant(g, ad::Array::vector<std::int32_t>({4, 5}));
  const auto idx = ad::constant(g, ad::Array::vector<std::int32_t>({1}));
  BOOST_CHECK_EXCEPTION((void)ad::gather(table, idx), ad::ValueError,
                        (MessageHas{{"gather 'GatherV2'", "int32", "does not support"}}));
  const auto floats = ad::constant(g, ad::Array::vector<float>({1}));
  BOOST_CHECK_EXCEPTION((void)ad::one_hot(floats, 2), ad::ValueError,
                        (MessageHas{{"one_hot", "float32", "expected int64, int32 or uint8"}}));
}

// loss_b = logsumexp(logits_b) - logits_b[label_b]; d loss / d logits = softmax - one_hot(label).
BOOST_AUTO_TEST_CASE(sparse_cross_entropy_takes_int32_and_uint8_labels) {
  const std::vector<double> logits_values{1, 2, 3, 0, 0, std::log(2.0)};
  const std::vector<std::int64_t> label_values{2, 0};
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double lse1 = std::log(4.0);
  const std::vector<double> expected_loss{lse0 - 3, lse1 - 0};
  std::vector<double> expected_grad(6);
  for (int b = 0; b < 2; ++b) {
    const double lse = b == 0 ? lse0 : lse1;
    for (int c = 0; c < 3; ++c) {
      const auto k = static_cast<std::size_t>(b * 3 + c);
      expected_grad[k] = std::exp(logits_values[k] - lse) - (c == label_values[b] ? 1.0 : 0.0);
    }
  }
  for (const auto dtype : {ad::DType::Int32, ad::DType::UInt8}) {
    ad::Graph g;
    const auto logits = ad::constant(g, ad::Array::from(logits_values, {2, 3}));
    const auto labels = ad::placeholder(g, dtype, {-1}, "labels");
    const auto loss = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
    const auto grad = ad::gradients(ad::reduce_sum(loss), {logits})[0];
    const auto layer_loss =
        ad::losses::sparse_softmax_cross_entropy(ad::reshape(labels, ad::Shape{-1, 1}), logits);
    ad::Session s(g);
    const auto feed = ad::Array::vector(label_values).astype(dtype);
    const auto out = s.run({loss, grad, layer_loss}, {{labels, feed}});
    for (std::size_t b = 0; b < 2; ++b)
      BOOST_TEST(out[0].flat(static_cast<std::int64_t>(b)) == expected_loss[b],
                 boost::test_tools::tolerance(1e-14));
    for (std::size_t k = 0; k < 6; ++k)
      BOOST_TEST(out[1].flat(static_cast<std::int64_t>(k)) == expected_grad[k],
                 boost::test_tools::tolerance(1e-14));
    BOOST_TEST(out[2].item<double>() == (expected_loss[0] + expected_loss[1]) / 2,
               boost::test_tools::tolerance(1e-14));
    BOOST_CHECK_EXCEPTION(
        (void)s.eval(loss, {{labels, ad::Array::vector<std::int64_t>({1, 3}).astype(dtype)}}),
        ad::InvalidArgumentError, (MessageHas{{"label 3 in row 1 is out of range"}}));
  }
}

BOOST_AUTO_TEST_CASE(variables_and_checkpoints_hold_int32_and_uint8) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("narrow_integers_test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.ckpt").string();
  const auto counts = ad::Array::from<std::int32_t>({-2147483647 - 1, -1, 0, 2147483647}, {2, 2});
  const auto bytes = ad::Array::from<std::uint8_t>({0, 128, 255}, {3});
  {
    ad::Graph g;
    const auto c = ad::Variable::create(
        g, "counts", {.shape = {2, 2}, .dtype = ad::DType::Int32, .trainable = false});
    const auto b = ad::Variable::create(
        g, "bytes", {.shape = {3}, .dtype = ad::DType::UInt8, .trainable = false});
    ad::Session s(g);
    s.run({ad::global_variables_initializer(g)});
    BOOST_TEST(
        values_of<std::int32_t>(s.eval(c.value())) == (std::vector<std::int32_t>{0, 0, 0, 0}),
        boost::test_tools::per_element());
    s.run({c.assign(ad::constant(g, counts)), b.assign(ad::constant(g, bytes))});
    ad::Saver(g).save(s, path);
  }
  ad::Graph g;
  const auto c = ad::Variable::create(
      g, "counts", {.shape = {2, 2}, .dtype = ad::DType::Int32, .trainable = false});
  const auto b = ad::Variable::create(
      g, "bytes", {.shape = {3}, .dtype = ad::DType::UInt8, .trainable = false});
  ad::Session s(g);
  ad::Saver(g).restore(s, path);
  BOOST_TEST(s.eval(c.value()).bitwise_equal(counts));
  BOOST_TEST(s.eval(b.value()).bitwise_equal(bytes));
  BOOST_TEST(ad::load_variable(path, "bytes").bitwise_equal(bytes));
  std::filesystem::remove_all(dir);
}

// Every op outside the list refuses the narrow dtypes when recorded, naming itself and the dtype.
BOOST_AUTO_TEST_CASE(other_ops_name_themselves_and_the_dtype) {
  ad::Graph g;
  const auto i = ad::placeholder(g, ad::DType::Int32, {2}, "i");
  const auto u = ad::placeholder(g, ad::DType::UInt8, {2, 2}, "u");
  BOOST_CHECK_EXCEPTION(
      (void)ad::add(i, i), ad::ValueError,
      (MessageHas{{"Add 'Add'", "input 0 ('i:0') is int32", "does not support", "cast it"}}));
  BOOST_CHECK_EXCEPTION((void)ad::mul(u, u), ad::ValueError,
                        (MessageHas{{"Mul 'Mul'", "uint8", "does not support"}}));
  BOOST_CHECK_EXCEPTION((void)ad::reduce_sum(u), ad::Error, (MessageHas{{"uint8"}}));
  BOOST_CHECK_EXCEPTION((void)ad::transpose(u), ad::ValueError,
                        (MessageHas{{"Transpose", "uint8", "does not support"}}));
  BOOST_CHECK_EXCEPTION((void)ad::matmul(u, u), ad::ValueError, (MessageHas{{"uint8"}}));
  BOOST_CHECK_EXCEPTION((void)ad::neg(i), ad::ValueError, (MessageHas{{"Neg", "int32"}}));
  BOOST_CHECK_EXCEPTION((void)ad::concat({i, i}, 0), ad::ValueError,
                        (MessageHas{{"ConcatV2", "int32", "does not support"}}));
  // After a cast they work.
  ad::Session s(g);
  const auto sum = ad::reduce_sum(ad::cast(u, ad::DType::Int64));
  BOOST_TEST(s.eval(sum, {{u, ad::Array::from<std::uint8_t>({255, 255, 1, 2}, {2, 2})}})
                 .item<std::int64_t>() == 513);
}

BOOST_AUTO_TEST_SUITE_END()
