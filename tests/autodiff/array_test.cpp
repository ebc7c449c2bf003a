// ad::Array (autodiff/array.h): construction (from, vector, scalar, full, zero-filled), dtype
// checks, copy-on-write sharing, 64-byte alignment, reshaped views, astype, clone, bitwise_equal,
// element access and printing. The ops on arrays are tested in tests/autodiff/ops/.
#include "autodiff/array.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "autodiff/internal/storage_stats.h"
#include "tests/support/gradient_check.h"

using ad::Array;
using ad::DType;
using ad::Shape;
using ad::testing::MessageHas;

namespace {

bool aligned_to_64_bytes(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

}  // namespace

BOOST_AUTO_TEST_SUITE(array_test)

BOOST_AUTO_TEST_CASE(from_keeps_values_shape_and_dtype) {
  const Array a = Array::from({1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f}, Shape{2, 3});
  BOOST_TEST(a.dtype() == DType::Float32);
  BOOST_TEST(a.shape() == Shape({2, 3}));
  BOOST_TEST(a.rank() == 2);
  BOOST_TEST(a.size() == 6);
  BOOST_TEST(a.nbytes() == 24u);
  const std::vector<float> expected{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const auto data = a.data<float>();
  BOOST_TEST(std::vector<float>(data.begin(), data.end()) == expected,
             boost::test_tools::per_element());
  BOOST_TEST(a.at({1, 0}) == 0.0);
  BOOST_TEST(a.at({0, 2}) == 3.25);
  BOOST_TEST(a.flat(4) == 7.0);
}

BOOST_AUTO_TEST_CASE(from_vector_of_each_dtype) {
  const Array d = Array::from(std::vector<double>{0.1, 0.2}, Shape{2});
  BOOST_TEST(d.dtype() == DType::Float64);
  BOOST_TEST(d.data<double>()[1] == 0.2);
  const Array i = Array::vector(std::vector<std::int64_t>{-4, 1LL << 40, 9});
  BOOST_TEST(i.dtype() == DType::Int64);
  BOOST_TEST(i.shape() == Shape({3}));
  BOOST_TEST(i.data<std::int64_t>()[1] == (1LL << 40));
  const Array b = Array::from(std::vector<bool>{true, false, true}, Shape{3});
  BOOST_TEST(b.dtype() == DType::Bool);
  BOOST_TEST(b.data<bool>()[0]);
  BOOST_TEST(!b.data<bool>()[1]);
  BOOST_TEST(b.data<bool>()[2]);
}

BOOST_AUTO_TEST_CASE(from_rejects_a_value_count_that_does_not_fill_the_shape) {
  BOOST_CHECK_EXCEPTION((void)Array::from({1.0f, 2.0f, 3.0f}, Shape{2, 2}), ad::ValueError,
                        (MessageHas{{"Array::from: 3 values do not fill shape [2, 2]", "4"}}));
  BOOST_CHECK_EXCEPTION((void)Array::from(std::vector<bool>{true}, Shape{2}), ad::ValueError,
                        (MessageHas{{"1 values do not fill shape [2]"}}));
}

BOOST_AUTO_TEST_CASE(scalar_has_rank_zero_and_one_element) {
  const Array s = Array::scalar(2.5);
  BOOST_TEST(s.dtype() == DType::Float64);
  BOOST_TEST(s.rank() == 0);
  BOOST_TEST(s.size() == 1);
  BOOST_TEST(s.item<double>() == 2.5);
  BOOST_TEST(Array::scalar<std::int64_t>(-3).item<std::int64_t>() == -3);
  BOOST_CHECK_EXCEPTION((void)Array::from({1.0, 2.0}, Shape{2}).item<double>(), ad::ValueError,
                        (MessageHas{{"Array::item: array of shape [2] is not a single value"}}));
}

BOOST_AUTO_TEST_CASE(default_is_an_empty_float32_vector) {
  const Array a;
  BOOST_TEST(a.dtype() == DType::Float32);
  BOOST_TEST(a.shape() == Shape({0}));
  BOOST_TEST(a.empty());
  BOOST_TEST(a.data<float>().empty());
}

BOOST_AUTO_TEST_CASE(shape_constructor_zero_fills_and_full_converts_the_value) {
  const Array z(DType::Float64, Shape{3, 4});
  for (const double v : z.data<double>()) BOOST_TEST(v == 0.0);
  const Array f = Array::full(DType::Int64, Shape{2}, 3.9);
  BOOST_TEST(f.data<std::int64_t>()[0] == 3);  // converted as static_cast does: toward zero
  BOOST_TEST(f.data<std::int64_t>()[1] == 3);
  const Array b = Array::full(DType::Bool, Shape{2}, 1.0);
  BOOST_TEST(b.data<bool>()[1]);
}

BOOST_AUTO_TEST_CASE(reading_with_the_wrong_element_type_is_a_value_error) {
  const Array a = Array::from({1.0f}, Shape{1});
  BOOST_CHECK_EXCEPTION(
      (void)a.data<double>(), ad::ValueError,
      (MessageHas{{"Array: elements requested as float64 but the array holds float32"}}));
  Array b = Array::from(std::vector<std::int64_t>{1}, Shape{1});
  BOOST_CHECK_EXCEPTION((void)b.mutable_data<float>(), ad::ValueError,
                        (MessageHas{{"requested as float32", "holds int64"}}));
}

BOOST_AUTO_TEST_CASE(unknown_dims_are_rejected) {
  BOOST_CHECK_EXCEPTION((void)Array(DType::Float32, Shape{-1, 3}), ad::ValueError,
                        (MessageHas{{"Array: shape [?, 3] has unknown dimensions"}}));
  BOOST_CHECK_EXCEPTION((void)Array::from({1.0f}, Shape{1}).reshaped(Shape{-1}), ad::ValueError,
                        (MessageHas{{"Array::reshaped: shape [?] has unknown dimensions"}}));
}

BOOST_AUTO_TEST_CASE(copies_share_storage_until_one_writes) {
  Array a = Array::from({1.0f, 2.0f, 3.0f}, Shape{3});
  Array b = a;
  BOOST_TEST(a.shares_storage_with(b));
  BOOST_TEST(a.raw_data() == b.raw_data());
  b.mutable_data<float>()[0] = 10.0f;  // copy on write: a keeps its values
  BOOST_TEST(!a.shares_storage_with(b));
  BOOST_TEST(a.data<float>()[0] == 1.0f);
  BOOST_TEST(b.data<float>()[0] == 10.0f);
  BOOST_TEST(b.data<float>()[2] == 3.0f);
}

BOOST_AUTO_TEST_CASE(an_unshared_array_writes_in_place_without_allocating) {
  Array a = Array::from({1.0, 2.0}, Shape{2});
  const void* before = a.raw_data();
  const auto allocations = ad::detail::storage_allocations();
  a.mutable_data<double>()[1] = 5.0;
  BOOST_TEST(a.raw_data() == before);
  BOOST_TEST(ad::detail::storage_allocations() == allocations);
  BOOST_TEST(a.data<double>()[1] == 5.0);
}

BOOST_AUTO_TEST_CASE(storage_is_64_byte_aligned) {
  for (const std::int64_t n : {1, 3, 17, 1000}) {
    const Array f(DType::Float32, Shape{n});
    const Array d = Array::full(DType::Float64, Shape{n, 3}, 1.0);
    BOOST_TEST(aligned_to_64_bytes(f.raw_data()));
    BOOST_TEST(aligned_to_64_bytes(d.raw_data()));
  }
  Array shared = Array::from({1.0f, 2.0f}, Shape{2});
  Array written = shared;
  written.mutable_data<float>()[0] = 0.0f;  // the copy made on write is aligned too
  BOOST_TEST(aligned_to_64_bytes(written.raw_data()));
}

BOOST_AUTO_TEST_CASE(reshaped_shares_storage_and_checks_the_element_count) {
  const Array a = Array::from({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}, Shape{2, 3});
  const Array r = a.reshaped(Shape{3, 2});
  BOOST_TEST(r.shape() == Shape({3, 2}));
  BOOST_TEST(r.shares_storage_with(a));
  BOOST_TEST(r.at({2, 1}) == 6.0);
  BOOST_CHECK_EXCEPTION((void)a.reshaped(Shape{4}), ad::ValueError,
                        (MessageHas{{"Array::reshaped: cannot view [2, 3] as [4]"}}));
}

BOOST_AUTO_TEST_CASE(astype_converts_and_clone_shares_nothing) {
  const Array a = Array::from({-1.75, 0.5, 2.0}, Shape{3});
  const Array i = a.astype(DType::Int64);
  BOOST_TEST(i.dtype() == DType::Int64);
  BOOST_TEST(i.data<std::int64_t>()[0] == -1);
  BOOST_TEST(i.data<std::int64_t>()[2] == 2);
  const Array same = a.astype(DType::Float64);
  BOOST_TEST(same.shares_storage_with(a));
  const Array c = a.clone();
  BOOST_TEST(!c.shares_storage_with(a));
  BOOST_TEST(c.bitwise_equal(a));
}

BOOST_AUTO_TEST_CASE(bitwise_equal_compares_dtype_shape_and_bits) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Array a = Array::from({nan, 0.0}, Shape{2});
  BOOST_TEST(a.bitwise_equal(Array::from({nan, 0.0}, Shape{2})));    // NaN equals its own bits
  BOOST_TEST(!a.bitwise_equal(Array::from({nan, -0.0}, Shape{2})));  // -0 has another sign bit
  BOOST_TEST(!a.bitwise_equal(a.reshaped(Shape{1, 2})));
  BOOST_TEST(!Array::from({1.0f}, Shape{1}).bitwise_equal(Array::from({1.0}, Shape{1})));
  BOOST_TEST(Array(DType::Int64, Shape{0, 3}).bitwise_equal(Array(DType::Int64, Shape{0, 3})));
}

BOOST_AUTO_TEST_CASE(element_access_checks_its_index) {
  const Array a = Array::from({1.0f, 2.0f, 3.0f, 4.0f}, Shape{2, 2});
  BOOST_CHECK_EXCEPTION((void)a.flat(4), ad::OutOfRangeError,
                        (MessageHas{{"Array: index 4 is outside [2, 2]"}}));
  BOOST_CHECK_EXCEPTION((void)a.at({0}), ad::OutOfRangeError,
                        (MessageHas{{"Array::at: 1 indices for an array of shape [2, 2]"}}));
  BOOST_CHECK_EXCEPTION((void)a.at({0, 2}), ad::OutOfRangeError,
                        (MessageHas{{"Array::at: index 2 on axis 1 of [2, 2]"}}));
}

BOOST_AUTO_TEST_CASE(prints_dtype_shape_and_nested_values) {
  const Array a = Array::from({1.0f, 2.0f, 3.0f, 4.0f}, Shape{2, 2});
  BOOST_TEST(a.to_string() == "float32[2, 2] [[1, 2], [3, 4]]");
  std::ostringstream out;
  out << Array::scalar<std::int64_t>(7);
  BOOST_TEST(out.str() == "int64[] 7");
  BOOST_TEST(Array::from({1.0, 2.0, 3.0}, Shape{3}).to_string(2) == "float64[3] [1, 2, ...]");
}

BOOST_AUTO_TEST_SUITE_END()
