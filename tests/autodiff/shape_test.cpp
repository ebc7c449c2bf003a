// ad::Shape (autodiff/shape.h): ranks up to kMaxRank stored inline, unknown (-1) dims, element
// counts with overflow detection, compatibility, editing (push_back, insert, erase), printing, and
// normalize_axis.
#include "autodiff/shape.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "autodiff/error.h"
#include "tests/support/gradient_check.h"

using ad::Shape;
using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(shape_test)

BOOST_AUTO_TEST_CASE(default_is_a_scalar_with_one_element) {
  const Shape s;
  BOOST_TEST(s.rank() == 0);
  BOOST_TEST(s.num_elements() == 1);
  BOOST_TEST(s.is_fully_defined());
  BOOST_TEST(s.to_string() == "[]");
}

BOOST_AUTO_TEST_CASE(dims_from_initializer_list_span_and_vector_agree) {
  const std::vector<std::int64_t> dims{2, 3, 5};
  const Shape a{2, 3, 5};
  const Shape b{std::span<const std::int64_t>(dims)};
  const Shape c(dims);
  BOOST_TEST(a == b);
  BOOST_TEST(a == c);
  BOOST_TEST(a.rank() == 3);
  BOOST_TEST(a[1] == 3);
  BOOST_TEST(a.to_vector() == dims, boost::test_tools::per_element());
  BOOST_TEST(a.num_elements() == 30);
}

BOOST_AUTO_TEST_CASE(rank_up_to_the_maximum_is_accepted_and_beyond_it_rejected) {
  const std::vector<std::int64_t> ones(Shape::kMaxRank, 1);
  const Shape most(ones);
  BOOST_TEST(most.rank() == Shape::kMaxRank);
  BOOST_TEST(most.num_elements() == 1);
  const std::vector<std::int64_t> too_many(Shape::kMaxRank + 1, 1);
  BOOST_CHECK_EXCEPTION((void)Shape(too_many), ad::ValueError,
                        (MessageHas{{"shape: rank 9 exceeds the supported maximum of 8"}}));
  Shape full(ones);
  BOOST_CHECK_EXCEPTION(full.push_back(2), ad::ValueError, (MessageHas{{"rank 9 exceeds"}}));
  BOOST_TEST(full == Shape(ones));  // unchanged by the failed push_back
}

BOOST_AUTO_TEST_CASE(negative_dims_other_than_unknown_are_rejected) {
  BOOST_CHECK_EXCEPTION(
      (void)Shape({2, -2}), ad::ValueError,
      (MessageHas{{"shape: dimension -2 is negative (only -1, unknown, is allowed)"}}));
  Shape s{4};
  BOOST_CHECK_EXCEPTION(s.insert(0, -5), ad::ValueError, (MessageHas{{"dimension -5"}}));
}

BOOST_AUTO_TEST_CASE(unknown_dims_make_the_count_unknown_and_print_as_question_marks) {
  const Shape s{-1, 64};
  BOOST_TEST(!s.is_fully_defined());
  BOOST_TEST(s.num_elements() == -1);
  BOOST_TEST(s.to_string() == "[?, 64]");
  std::ostringstream out;
  out << Shape{2, -1, -1};
  BOOST_TEST(out.str() == "[2, ?, ?]");
  BOOST_TEST(Shape({0, -1}).num_elements() == -1);  // unknown even though one dim is zero
}

BOOST_AUTO_TEST_CASE(num_elements_reports_int64_overflow) {
  const std::int64_t big = std::int64_t{1} << 32;
  BOOST_TEST(Shape({big, (std::int64_t{1} << 30) - 1}).num_elements() ==
             big * ((std::int64_t{1} << 30) - 1));
  BOOST_CHECK_EXCEPTION((void)Shape({big, big}).num_elements(), ad::ValueError,
                        (MessageHas{{"shape [4294967296, 4294967296] has more elements than fit "
                                     "in int64"}}));
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  BOOST_TEST(Shape({max, 1}).num_elements() == max);
  BOOST_CHECK_EXCEPTION((void)Shape({max, 2}).num_elements(), ad::ValueError,
                        (MessageHas{{"more elements than fit in int64"}}));
  BOOST_TEST(Shape({max, 0}).num_elements() == 0);
}

BOOST_AUTO_TEST_CASE(compatibility_treats_unknown_dims_as_wildcards) {
  BOOST_TEST(Shape({-1, 3}).is_compatible_with(Shape{8, 3}));
  BOOST_TEST(Shape({8, 3}).is_compatible_with(Shape{-1, -1}));
  BOOST_TEST(!Shape({8, 3}).is_compatible_with(Shape{8, 4}));
  BOOST_TEST(!Shape({8, 3}).is_compatible_with(Shape{8, 3, 1}));
  BOOST_TEST(Shape().is_compatible_with(Shape()));
  BOOST_TEST(!(Shape({-1, 3}) == Shape({8, 3})));  // equality is exact
}

BOOST_AUTO_TEST_CASE(push_back_insert_and_erase_edit_in_place) {
  Shape s{2, 3};
  s.push_back(5);
  BOOST_TEST(s == Shape({2, 3, 5}));
  s.insert(0, 7);
  BOOST_TEST(s == Shape({7, 2, 3, 5}));
  s.insert(2, -1);
  BOOST_TEST(s == Shape({7, 2, -1, 3, 5}));
  s.erase(1);
  BOOST_TEST(s == Shape({7, -1, 3, 5}));
  s.erase(3);
  BOOST_TEST(s == Shape({7, -1, 3}));
  s[2] = 9;
  BOOST_TEST(s.to_string() == "[7, ?, 9]");
}

BOOST_AUTO_TEST_CASE(normalize_axis_counts_negative_axes_from_the_end) {
  BOOST_TEST(ad::normalize_axis(-1, 3, "op") == 2);
  BOOST_TEST(ad::normalize_axis(0, 3, "op") == 0);
  BOOST_TEST(ad::normalize_axis(-3, 3, "op") == 0);
  BOOST_CHECK_EXCEPTION(
      (void)ad::normalize_axis(3, 3, "concat"), ad::ValueError,
      (MessageHas{{"concat: axis 3 is out of range for rank 3 (valid: -3 to 2)"}}));
  BOOST_CHECK_EXCEPTION((void)ad::normalize_axis(-4, 3, "concat"), ad::ValueError,
                        (MessageHas{{"axis -4 is out of range"}}));
}

BOOST_AUTO_TEST_SUITE_END()
