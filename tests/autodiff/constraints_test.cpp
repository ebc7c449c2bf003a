// Constraints: each projection against the Keras formula evaluated in the test (norms, clipping
// and the 1e-7 epsilon), axis handling, the radial constraint against a literal replay of Keras's
// padding loop, use as var.assign(constraint(var)), and errors.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace con = ad::constraints;
using ad::testing::MessageHas;

namespace {

constexpr double kEps = 1e-7;

// A 3 x 4 matrix whose columns have norms 5, 1, 1e-6 and 13 (for axis 0).
ad::Array matrix() {
  return ad::Array::from<double>({3, 0.6, 1e-6, 5,  //
                                  4, 0.8, 0, 12,    //
                                  0, 0, 0, 0},
                                 {3, 4});
}

ad::Array constrained(const ad::Constraint& c, const ad::Array& w) {
  ad::Graph g;
  const auto x = ad::constant(g, w);
  const auto y = c(x);
  BOOST_REQUIRE(y.shape() == w.shape());
  ad::Session s(g);
  return s.eval(y);
}

// Column (axis 0) or row (axis 1) norms of a 3 x 4 matrix.
double norm_of(const ad::Array& w, int axis, std::int64_t index) {
  double sum = 0;
  const std::int64_t len = axis == 0 ? 3 : 4;
  for (std::int64_t t = 0; t < len; ++t) {
    const double v = axis == 0 ? w.at({t, index}) : w.at({index, t});
    sum += v * v;
  }
  return std::sqrt(sum);
}

// Keras's factor w -> w * factor(n) per slice, evaluated for every element of a 3 x 4 matrix.
template <class Factor>
void check_projection(const ad::Array& out, const ad::Array& w, int axis, Factor factor) {
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < 4; ++j) {
      const double n = norm_of(w, axis, axis == 0 ? j : i);
      const double expected = w.at({i, j}) * factor(n);
      BOOST_TEST(std::abs(out.at({i, j}) - expected) <= 1e-15 * std::max(1.0, std::abs(expected)),
                 "at [" << i << ", " << j << "]: " << out.at({i, j}) << " vs " << expected);
    }
  }
}

// Keras r2.4's RadialConstraint._kernel_constraint on one k x k slice, replayed literally: start
// from kernel[start-1:start, start-1:start] (tiled to 2 x 2 when k is even) and pad it by one on
// every side with kernel[start+i, start+i] for i = index0 .. start-1.
std::vector<double> keras_radial(const std::vector<double>& kernel, std::int64_t k) {
  const std::int64_t start = k / 2;
  const auto at = [&](std::int64_t r, std::int64_t c) {
    return kernel[static_cast<std::size_t>(r * k + c)];
  };
  std::int64_t size = k % 2 == 1 ? 1 : 2;
  std::vector<double> array(static_cast<std::size_t>(size * size), at(start - 1, start - 1));
  for (std::int64_t i = k % 2 == 1 ? 0 : 1; i < start; ++i) {
    const std::int64_t padded = size + 2;
    std::vector<double> next(static_cast<std::size_t>(padded * padded), at(start + i, start + i));
    for (std::int64_t r = 0; r < size; ++r) {
      for (std::int64_t c = 0; c < size; ++c) {
        next[static_cast<std::size_t>((r + 1) * padded + c + 1)] =
            array[static_cast<std::size_t>(r * size + c)];
      }
    }
    array = std::move(next);
    size = padded;
  }
  BOOST_REQUIRE(size == k);
  return array;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(constraints_test)

BOOST_AUTO_TEST_CASE(non_neg_zeroes_negative_entries) {
  const auto w = ad::Array::from<double>({-1.5, 0.0, 2.0, -0.0, 3.5, -1e-300}, {2, 3});
  const auto out = constrained(con::non_neg(), w);
  const double expected[] = {0, 0, 2, 0, 3.5, 0};
  for (std::int64_t i = 0; i < 6; ++i) BOOST_TEST(out.flat(i) == expected[i]);
  const auto f32 = constrained(con::non_neg(), w.astype(ad::DType::Float32));
  BOOST_TEST(f32.dtype() == ad::DType::Float32);
  BOOST_TEST(f32.flat(0) == 0.0);
  BOOST_TEST(f32.flat(2) == 2.0);
}

BOOST_AUTO_TEST_CASE(max_norm_scales_columns_down_to_max_value) {
  const auto w = matrix();
  const auto out = constrained(con::max_norm(2.0), w);
  check_projection(out, w, 0, [](double n) { return std::clamp(n, 0.0, 2.0) / (kEps + n); });
  // A column of norm 13 ends with norm 2 up to the epsilon; small columns are (almost) unchanged,
  // except that the epsilon shrinks a column of norm 1e-6 by 1e-6 / (1e-7 + 1e-6).
  BOOST_TEST(std::abs(norm_of(out, 0, 3) - 2.0) < 1e-7);
  BOOST_TEST(out.at({0, 2}) == 1e-6 * (1e-6 / (kEps + 1e-6)), boost::test_tools::tolerance(1e-12));
  // The defaults are max_value 2 over axis 0; axis 1 constrains rows.
  check_projection(constrained(con::max_norm(), w), w, 0,
                   [](double n) { return std::clamp(n, 0.0, 2.0) / (kEps + n); });
  check_projection(constrained(con::max_norm(1.0, {1}), w), w, 1,
                   [](double n) { return std::clamp(n, 0.0, 1.0) / (kEps + n); });
}

BOOST_AUTO_TEST_CASE(unit_norm_divides_by_epsilon_plus_norm) {
  const auto w = matrix();
  check_projection(constrained(con::unit_norm(), w), w, 0,
                   [](double n) { return 1.0 / (kEps + n); });
  check_projection(constrained(con::unit_norm({-1}), w), w, 1,
                   [](double n) { return 1.0 / (kEps + n); });
  // Over both axes: the whole matrix.
  const auto all = constrained(con::unit_norm({0, 1}), w);
  double total = 0;
  for (std::int64_t i = 0; i < 12; ++i) total += w.flat(i) * w.flat(i);
  BOOST_TEST(all.at({1, 3}) == 12.0 / (kEps + std::sqrt(total)),
             boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(min_max_norm_moves_norms_a_fraction_rate_into_the_range) {
  const auto w = matrix();
  for (const double rate : {1.0, 0.25}) {
    const auto out = constrained(con::min_max_norm(0.9, 2.0, rate), w);
    check_projection(out, w, 0, [rate](double n) {
      return (rate * std::clamp(n, 0.9, 2.0) + (1 - rate) * n) / (kEps + n);
    });
  }
  // As Keras's clip, a max below the min is raised to the min.
  check_projection(constrained(con::min_max_norm(3.0, 1.0), w), w, 0,
                   [](double n) { return 3.0 / (kEps + n); });
}

BOOST_AUTO_TEST_CASE(norm_constraints_work_in_float32, *boost::unit_test::tolerance(1e-6)) {
  const auto w = matrix();
  const auto out = constrained(con::max_norm(2.0), w.astype(ad::DType::Float32));
  BOOST_TEST(out.dtype() == ad::DType::Float32);
  BOOST_TEST(out.at({1, 3}) == 12.0 * 2.0 / (kEps + 13.0));
  BOOST_TEST(out.at({0, 0}) == 3.0 * 2.0 / (kEps + 5.0));
}

BOOST_AUTO_TEST_CASE(radial_constraint_replays_keras) {
  for (const std::int64_t k : {2, 3, 4, 5, 6, 7}) {
    const ad::Shape shape{k, k, 2, 3};
    const auto w = ad::testing::random_array(shape, static_cast<std::uint64_t>(k));
    const auto out = constrained(con::radial_constraint(), w);
    for (std::int64_t c = 0; c < 2; ++c) {
      for (std::int64_t f = 0; f < 3; ++f) {
        std::vector<double> slice;
        for (std::int64_t r = 0; r < k; ++r) {
          for (std::int64_t col = 0; col < k; ++col) slice.push_back(w.at({r, col, c, f}));
        }
        const auto expected = keras_radial(slice, k);
        for (std::int64_t r = 0; r < k; ++r) {
          for (std::int64_t col = 0; col < k; ++col) {
            BOOST_TEST(out.at({r, col, c, f}) == expected[static_cast<std::size_t>(r * k + col)]);
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_constraint_projects_a_variable_through_assign) {
  ad::Graph g;
  const auto w = ad::get_variable(
      g, "kernel",
      {.shape = {3, 4}, .dtype = ad::DType::Float64, .constraint = con::max_norm(1.0)});
  const auto project = w.assign(w.constraint()(w.value()));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.set_value(w, matrix());
  s.run({project});
  for (std::int64_t j = 0; j < 4; ++j) BOOST_TEST(norm_of(s.value(w), 0, j) <= 1.0);
  check_projection(s.value(w), matrix(), 0,
                   [](double n) { return std::clamp(n, 0.0, 1.0) / (kEps + n); });
}

BOOST_AUTO_TEST_CASE(errors_name_the_constraint_and_the_shape) {
  ad::Graph g;
  const auto x = ad::constant(g, matrix(), "w");
  BOOST_CHECK_EXCEPTION((void)con::max_norm(2.0, {2})(x), ad::ValueError,
                        (MessageHas{{"max_norm", "2"}}));
  BOOST_CHECK_EXCEPTION((void)con::unit_norm({0, -2})(x), ad::ValueError,
                        (MessageHas{{"unit_norm", "listed twice", "[3, 4]"}}));
  BOOST_CHECK_EXCEPTION((void)con::min_max_norm(0, 1, 1, {})(x), ad::ValueError,
                        (MessageHas{{"min_max_norm", "axis list is empty"}}));
  BOOST_CHECK_EXCEPTION((void)con::radial_constraint()(x), ad::ValueError,
                        (MessageHas{{"radial_constraint", "'w:0'", "[3, 4]", "Conv2D"}}));
  const auto wide = ad::constant(g, ad::Array(ad::DType::Float64, {3, 4, 1, 1}));
  BOOST_CHECK_EXCEPTION((void)con::radial_constraint()(wide), ad::ValueError,
                        (MessageHas{{"[3, 4, 1, 1]", "square"}}));
  const auto ints = ad::constant(g, ad::Array::from<std::int64_t>({1}, {1}), "ints");
  BOOST_CHECK_EXCEPTION((void)con::non_neg()(ints), ad::ValueError,
                        (MessageHas{{"non_neg", "int64"}}));
}

BOOST_AUTO_TEST_SUITE_END()
