// Gradient clipping against closed forms, with gradients checked by float64 central differences,
// TF's special cases (zero tensor, infinite norm, empty entries) and argument errors.
#include "optim/clip.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "autodiff/autodiff.h"
#include "optim/gradient_descent.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

BOOST_AUTO_TEST_SUITE(clip_test)

BOOST_AUTO_TEST_CASE(clip_by_value_clamps_every_element) {
  ad::Graph g;
  auto t = make_constant(g, {-3.0, -0.5, 0.0, 0.7, 2.5}, {5});
  ad::Session s(g);
  check_close(to_doubles(s.eval(ad::optim::clip_by_value(t, -1.0, 1.0))),
              {-1.0, -0.5, 0.0, 0.7, 1.0}, 0.0, "scalars");
  auto lo = make_constant(g, {-4, -0.25, 0.5, 0, 0}, {5});
  check_close(to_doubles(s.eval(ad::optim::clip_by_value(t, lo, 2.0))),
              {-3.0, -0.25, 0.5, 0.7, 2.0}, 0.0, "tensor bound");
}

BOOST_AUTO_TEST_CASE(clip_by_value_gradient_matches_finite_differences) {
  check_gradient(
      [](const std::vector<ad::Tensor>& x) { return ad::optim::clip_by_value(x[0], -0.5, 0.5); },
      {random_array({3, 4}, 11, -1.0, 1.0)});
}

BOOST_AUTO_TEST_CASE(clip_by_value_refuses_to_broadcast_t) {
  ad::Graph g;
  auto t = make_constant(g, {1.0, 2.0}, {2});
  auto bounds = make_constant(g, {0, 0, 0, 0, 0, 0}, {3, 2});
  BOOST_CHECK_EXCEPTION((void)ad::optim::clip_by_value(t, bounds, 1.0), ad::ValueError,
                        (MessageHas{{"clip_by_value", "[2]", "would broadcast it to [3, 2]"}}));
}

BOOST_AUTO_TEST_CASE(clip_by_norm_rescales_only_above_the_limit) {
  ad::Graph g;
  auto big = make_constant(g, {3.0, 4.0}, {2});    // norm 5
  auto small = make_constant(g, {0.3, 0.4}, {2});  // norm 0.5
  auto zero = make_constant(g, {0.0, 0.0}, {2});
  ad::Session s(g);
  check_close(to_doubles(s.eval(ad::optim::clip_by_norm(big, 2.0))), {1.2, 1.6}, 1e-15, "big");
  check_close(to_doubles(s.eval(ad::optim::clip_by_norm(small, 2.0))), {0.3, 0.4}, 1e-15, "small");
  check_close(to_doubles(s.eval(ad::optim::clip_by_norm(zero, 2.0))), {0.0, 0.0}, 0.0, "zero");
}

BOOST_AUTO_TEST_CASE(clip_by_norm_over_axes_clips_each_slice) {
  ad::Graph g;
  // Rows of norm 5 and 0.5; clipping per row (axis 1) to 1.
  auto t = make_constant(g, {3.0, 4.0, 0.3, 0.4}, {2, 2});
  ad::Session s(g);
  check_close(to_doubles(s.eval(ad::optim::clip_by_norm(t, 1.0, {1}))), {0.6, 0.8, 0.3, 0.4}, 1e-15,
              "rows");
  // Columns (axis 0): norms √(9.09) and √(16.16).
  const double c0 = std::sqrt(9.09);
  const double c1 = std::sqrt(16.16);
  check_close(to_doubles(s.eval(ad::optim::clip_by_norm(t, 1.0, {0}))),
              {3.0 / c0, 4.0 / c1, 0.3 / c0, 0.4 / c1}, 1e-15, "columns");
}

BOOST_AUTO_TEST_CASE(clip_by_norm_gradient_matches_finite_differences) {
  check_gradient(
      [](const std::vector<ad::Tensor>& x) { return ad::optim::clip_by_norm(x[0], 1.0); },
      {random_array({3, 4}, 12, -1.0, 1.0)});
  check_gradient(
      [](const std::vector<ad::Tensor>& x) { return ad::optim::clip_by_norm(x[0], 1.0, {1}); },
      {random_array({3, 4}, 13, -1.0, 1.0)});
}

BOOST_AUTO_TEST_CASE(clip_by_norm_of_zero_has_a_finite_gradient) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {3}, "x");
  auto y = ad::reduce_sum(ad::optim::clip_by_norm(x, 1.0));
  auto dx = ad::gradients(y, {x})[0];
  ad::Session s(g);
  // At zero the norm is below the limit, so the clip is the identity: gradient 1.
  check_close(to_doubles(s.eval(dx, {{x, ad::Array::from<double>({0, 0, 0}, {3})}})),
              {1.0, 1.0, 1.0}, 0.0, "gradient at zero");
}

BOOST_AUTO_TEST_CASE(global_norm_and_clip_by_global_norm_match_closed_forms) {
  ad::Graph g;
  auto a = make_constant(g, {3.0, 0.0}, {2});
  auto b = make_constant(g, {4.0, 0.0, 12.0}, {3});  // global norm √(9 + 16 + 144) = 13
  ad::Session s(g);
  BOOST_TEST(s.eval(ad::optim::global_norm({a, ad::Tensor(), b})).flat(0) == 13.0,
             boost::test_tools::tolerance(1e-15));
  auto [clipped, norm] = ad::optim::clip_by_global_norm({a, ad::Tensor(), b}, 6.5);
  BOOST_TEST_REQUIRE(clipped.size() == 3U);
  BOOST_TEST(!clipped[1]);
  const auto out = s.run({clipped[0], clipped[2], norm});
  check_close(to_doubles(out[0]), {1.5, 0.0}, 1e-15, "a");
  check_close(to_doubles(out[1]), {2.0, 0.0, 6.0}, 1e-15, "b");
  BOOST_TEST(out[2].flat(0) == 13.0, boost::test_tools::tolerance(1e-15));
  // Below the limit nothing changes.
  auto [unclipped, norm2] = ad::optim::clip_by_global_norm({a, b}, 20.0);
  check_close(to_doubles(s.eval(unclipped[1])), {4.0, 0.0, 12.0}, 1e-15, "b unclipped");
  (void)norm2;
}

BOOST_AUTO_TEST_CASE(an_infinite_global_norm_makes_every_result_nan) {
  ad::Graph g;
  auto a = make_constant(g, {std::numeric_limits<double>::infinity(), 1.0}, {2});
  auto b = make_constant(g, {1.0}, {1});
  auto [clipped, norm] = ad::optim::clip_by_global_norm({a, b}, 1.0);
  ad::Session s(g);
  const auto out = s.run({clipped[0], clipped[1]});
  BOOST_TEST(std::isnan(out[0].flat(1)));
  BOOST_TEST(std::isnan(out[1].flat(0)));
  (void)norm;
}

BOOST_AUTO_TEST_CASE(clip_by_global_norm_gradient_matches_finite_differences) {
  check_gradient(
      [](const std::vector<ad::Tensor>& x) {
        auto [clipped, norm] = ad::optim::clip_by_global_norm({x[0], x[1]}, 1.0);
        return ad::reduce_sum(clipped[0] * clipped[0]) * 0.5 + ad::reduce_sum(clipped[1]) + norm;
      },
      {random_array({2, 3}, 14, -1.0, 1.0), random_array({4}, 15, -1.0, 1.0)});
}

BOOST_AUTO_TEST_CASE(clipped_gradients_feed_apply_gradients) {
  ad::Graph g;
  auto w = make_variable(g, "w", {0.0, 0.0}, {2});
  auto v = make_variable(g, "v", {1.0}, {1});
  auto loss = ad::reduce_sum(w.value() * make_constant(g, {3.0, 4.0}, {2}));
  ad::optim::GradientDescent sgd({.learning_rate = 1.0});
  auto [clipped, norm] = ad::optim::clip_by_global_norm(sgd.compute_gradients(loss, {w, v}), 1.0);
  BOOST_TEST(!clipped[1].first);  // v does not reach the loss
  auto train = sgd.apply_gradients(clipped);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  check_close(to_doubles(s.value(w)), {-0.6, -0.8}, 1e-15, "w");
  BOOST_TEST(s.value(v).flat(0) == 1.0);
  (void)norm;
}

BOOST_AUTO_TEST_CASE(integer_inputs_are_value_errors) {
  ad::Graph g;
  auto t = ad::constant(g, ad::Array::from<std::int64_t>({1, 2}, {2}));
  BOOST_CHECK_EXCEPTION((void)ad::optim::clip_by_norm(t, 1.0), ad::ValueError,
                        (MessageHas{{"clip_by_norm", "int64", "must be floating"}}));
  BOOST_CHECK_EXCEPTION((void)ad::optim::global_norm({ad::Tensor()}), ad::ValueError,
                        (MessageHas{{"global_norm", "every tensor is empty"}}));
}

BOOST_AUTO_TEST_SUITE_END()
