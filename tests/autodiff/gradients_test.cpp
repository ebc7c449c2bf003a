// Reverse mode: accumulation, unreachable and integer paths, higher order, custom_gradient.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

BOOST_AUTO_TEST_SUITE(gradients_test)

BOOST_AUTO_TEST_CASE(a_value_used_twice_receives_both_contributions) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto y = x * x + x * 3.0;  // dy/dx = 2x + 3
  auto dx = ad::gradients(y, {x})[0];
  ad::Session s(g);
  BOOST_TEST(s.eval(dx, {{x, ad::Array::scalar(2.0)}}).item<double>() == 7.0);
}

BOOST_AUTO_TEST_CASE(unreachable_x_gives_an_empty_tensor) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto z = ad::placeholder(g, ad::DType::Float64, {}, "z");
  auto y = x * 2.0;
  const auto grads = ad::gradients(y, {x, z});
  BOOST_TEST(static_cast<bool>(grads[0]));
  BOOST_TEST(!static_cast<bool>(grads[1]));
  // An x recorded after y: no path, whatever else is differentiated.
  auto later = ad::placeholder(g, ad::DType::Float64, {}, "later");
  const auto with_later = ad::gradients(y, {x, later});
  BOOST_TEST(static_cast<bool>(with_later[0]));
  BOOST_TEST(!static_cast<bool>(with_later[1]));
  // A y recorded before every x: it contributes nothing, the other y still does.
  const auto with_earlier = ad::gradients(std::vector<ad::Tensor>{y, later * 3.0}, {later});
  BOOST_TEST(static_cast<bool>(with_earlier[0]));
  ad::Session s(g);
  BOOST_TEST(
      s.run({with_earlier[0]}, {{later, ad::Array::scalar(1.0)}, {x, ad::Array::scalar(1.0)}})[0]
          .flat(0) == 3.0);
}

BOOST_AUTO_TEST_CASE(integer_and_boolean_paths_carry_no_gradient) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {3}, "x");
  auto through_int = ad::cast(ad::cast(x, ad::DType::Int64), ad::DType::Float64);
  auto mask = ad::cast(ad::greater(x, ad::scalar_like(x, 0.0)), ad::DType::Float64);
  const auto grads = ad::gradients(through_int + mask, {x});
  BOOST_TEST(!static_cast<bool>(grads[0]));
}

BOOST_AUTO_TEST_CASE(stop_gradient_blocks_the_gradient) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto y = x * ad::stop_gradient(x);  // d/dx = stop(x) = x
  ad::Session s(g);
  BOOST_TEST(s.eval(ad::gradients(y, {x})[0], {{x, ad::Array::scalar(3.0)}}).item<double>() == 3.0);
}

BOOST_AUTO_TEST_CASE(third_derivative_of_a_cubic) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto y = x * x * x;
  auto d1 = ad::gradients(y, {x})[0];
  auto d2 = ad::gradients(d1, {x})[0];
  auto d3 = ad::gradients(d2, {x})[0];
  ad::Session s(g);
  const auto out = s.run({d1, d2, d3}, {{x, ad::Array::scalar(2.0)}});
  BOOST_TEST(out[0].item<double>() == 12.0);
  BOOST_TEST(out[1].item<double>() == 12.0);
  BOOST_TEST(out[2].item<double>() == 6.0);
}

BOOST_AUTO_TEST_CASE(hessian_vector_product_matches_closed_form) {
  // f(x) = sum(exp(x) * x); H = diag(exp(x) (x + 2)); Hv elementwise.
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {3}, "x");
  auto v = ad::placeholder(g, ad::DType::Float64, {3}, "v");
  auto f = ad::exp(x) * x;
  auto grad = ad::gradients(f, {x})[0];
  auto hv = ad::gradients(grad * v, {x})[0];
  ad::Session s(g);
  const std::vector<double> xs{0.1, -0.5, 1.2};
  const std::vector<double> vs{1.0, 2.0, -1.0};
  const auto out = s.eval(hv, {{x, ad::Array::vector(xs)}, {v, ad::Array::vector(vs)}});
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(out.data<double>()[i] == std::exp(xs[i]) * (xs[i] + 2) * vs[i],
               boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(grad_ys_weights_the_outputs) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto w = ad::constant(g, ad::Array::from<double>({3, -1}, {2}));
  const auto dx = ad::gradients({x * x}, {x}, {w})[0];
  ad::Session s(g);
  const auto out = s.eval(dx, {{x, ad::Array::from<double>({1, 2}, {2})}});
  BOOST_TEST(out.data<double>()[0] == 6.0);
  BOOST_TEST(out.data<double>()[1] == -4.0);
}

BOOST_AUTO_TEST_CASE(custom_gradient_replaces_differentiation_of_the_composition) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  // Forward: x^2; hand-written gradient deliberately 10 * x * dy so the test can tell it was used.
  const auto y = ad::custom_gradient(
      {x}, [](const std::vector<ad::Tensor>& in) { return std::vector<ad::Tensor>{in[0] * in[0]}; },
      [](const std::vector<ad::Tensor>& in, const std::vector<ad::Tensor>&,
         const std::vector<ad::Tensor>& dy) {
        return std::vector<ad::Tensor>{in[0] * dy[0] * 10.0};
      })[0];
  const auto dx = ad::gradients(y, {x})[0];
  const auto ddx = ad::gradients(dx, {x})[0];  // the custom gradient is itself differentiable
  ad::Session s(g);
  const auto out = s.run({y, dx, ddx}, {{x, ad::Array::from<double>({1, 3}, {2})}});
  BOOST_TEST(out[0].data<double>()[1] == 9.0);
  BOOST_TEST(out[1].data<double>()[1] == 30.0);
  BOOST_TEST(out[2].data<double>()[1] == 10.0);
}

BOOST_AUTO_TEST_CASE(gradient_check_reports_a_wrong_gradient) {
  // The checker itself must be able to fail: a custom gradient that is off by a factor 2.
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {3}, "x");
  const auto y = ad::custom_gradient(
      {x},
      [](const std::vector<ad::Tensor>& in) { return std::vector<ad::Tensor>{ad::exp(in[0])}; },
      [](const std::vector<ad::Tensor>&, const std::vector<ad::Tensor>& out,
         const std::vector<ad::Tensor>& dy) {
        return std::vector<ad::Tensor>{out[0] * dy[0] * 2.0};
      })[0];
  ad::Session s(g);
  const auto result = ad::compute_gradient_error(s, {x}, {ad::testing::random_array({3}, 5)}, y);
  BOOST_TEST(result.max_error > 0.1);
  BOOST_TEST(result.worst.find("x:0") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(gradient_check_of_variables_moves_them_and_puts_them_back) {
  // y = sum(w * w * x): d/dw = 2 w x exactly, so the right gradient checks to rounding; a custom
  // gradient off by a factor 3 must fail, naming the variable; the values end as they started.
  ad::Graph g;
  const auto w = ad::get_variable(g, "w", {.shape = {4}, .dtype = ad::DType::Float64});
  const auto x = ad::placeholder(g, ad::DType::Float64, {4}, "x");
  const auto y = ad::reduce_sum(w.value() * w.value() * x);
  const auto wrong = ad::custom_gradient(
      {w.value()},
      [&](const std::vector<ad::Tensor>& in) {
        return std::vector<ad::Tensor>{ad::reduce_sum(in[0] * in[0] * x)};
      },
      [&](const std::vector<ad::Tensor>& in, const std::vector<ad::Tensor>&,
          const std::vector<ad::Tensor>& dy) {
        return std::vector<ad::Tensor>{in[0] * x * dy[0] * 6.0};
      })[0];
  ad::Session s(g);
  const auto wv = ad::testing::random_array({4}, 11);
  s.set_value(w, wv);
  const ad::FeedDict feeds = {{x, ad::testing::random_array({4}, 12)}};
  const auto right = ad::compute_gradient_error(s, {w}, y, feeds);
  BOOST_TEST(right.max_error <= 1e-8, right.worst);
  BOOST_TEST(right.elements_checked == 4u);
  const auto bad = ad::compute_gradient_error(s, {w}, wrong, feeds);
  BOOST_TEST(bad.max_error > 0.1);
  BOOST_TEST(bad.worst.find("'w'") != std::string::npos, bad.worst);
  BOOST_TEST(s.value(w).bitwise_equal(wv));
}

BOOST_AUTO_TEST_SUITE_END()
