// while_loop (TF1 semantics): values, only the needed iterations run, gradients of first and second
// order against the unrolled graph and float64 central differences, nesting with cond and with
// another loop, variables in the body, build- and run-time errors; map_fn, foldl and scan.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {
ad::Tensor i64(ad::Graph& g, std::int64_t v) {
  return ad::scalar(g, static_cast<double>(v), ad::DType::Int64);
}
ad::WhileLoopOptions named(std::string name) {
  ad::WhileLoopOptions o;
  o.name = std::move(name);
  return o;
}
// v <- tanh(v * w + x), n times: the body both loop and gradient tests use.
ad::Tensor step(const ad::Tensor& v, const ad::Tensor& w, const ad::Tensor& x) {
  return ad::tanh(v * w + x);
}
ad::Tensor looped(const ad::Tensor& v0, const ad::Tensor& w, const ad::Tensor& x, int n) {
  ad::Graph& g = v0.graph();
  const auto out =
      ad::while_loop([&](const std::vector<ad::Tensor>& v) { return ad::less(v[0], i64(g, n)); },
                     [&](const std::vector<ad::Tensor>& v) {
                       return std::vector<ad::Tensor>{v[0] + 1.0, step(v[1], w, x)};
                     },
                     {i64(g, 0), v0});
  return out[1];
}
ad::Tensor unrolled(ad::Tensor v, const ad::Tensor& w, const ad::Tensor& x, int n) {
  for (int i = 0; i < n; ++i) v = step(v, w, x);
  return v;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(while_loop_test)

BOOST_AUTO_TEST_CASE(sums_a_series_and_counts_iterations) {
  ad::Graph g;
  const auto out = ad::while_loop(
      [&](const std::vector<ad::Tensor>& v) { return ad::less_equal(v[0], i64(g, 10)); },
      [&](const std::vector<ad::Tensor>& v) {
        return std::vector<ad::Tensor>{v[0] + 1.0, v[1] + ad::cast(v[0], ad::DType::Float64)};
      },
      {i64(g, 1), ad::scalar(g, 0.0, ad::DType::Float64)});
  ad::Session s(g);
  const auto r = s.run({out[0], out[1]});
  BOOST_TEST(r[0].item<std::int64_t>() == 11);
  BOOST_TEST(r[1].item<double>() == 55.0);  // 1 + ... + 10
}

BOOST_AUTO_TEST_CASE(a_false_condition_runs_no_iteration) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  const auto out = ad::while_loop(
      [&](const std::vector<ad::Tensor>& v) {
        return ad::less(ad::reduce_sum(v[0]), ad::scalar_like(v[0], 0.0));
      },
      [&](const std::vector<ad::Tensor>& v) { return std::vector<ad::Tensor>{v[0] * 2.0}; }, {x});
  ad::Session s(g);
  const auto r = s.eval(out[0], {{x, ad::Array::from<double>({1, 2}, {2})}});
  BOOST_TEST(r.data<double>()[1] == 2.0);
}

// The body indexes elems[i]; run once more than needed it would fail (index 3 of 3 rows).
BOOST_AUTO_TEST_CASE(the_body_never_runs_after_the_last_iteration) {
  ad::Graph g;
  auto elems = ad::constant(g, ad::Array::from<double>({1, 2, 3, 4, 5, 6}, {3, 2}));
  const auto out =
      ad::while_loop([&](const std::vector<ad::Tensor>& v) { return ad::less(v[0], i64(g, 3)); },
                     [&](const std::vector<ad::Tensor>& v) {
                       return std::vector<ad::Tensor>{v[0] + 1.0, v[1] + ad::gather(elems, v[0])};
                     },
                     {i64(g, 0), ad::constant(g, ad::Array::from<double>({0, 0}, {2}))});
  ad::Session s(g);
  const auto r = s.eval(out[1]);
  BOOST_TEST(r.data<double>()[0] == 9.0);
  BOOST_TEST(r.data<double>()[1] == 12.0);
  // The same gather run at index 3 does fail: the test above would have seen it.
  BOOST_CHECK_THROW(s.eval(ad::gather(elems, i64(g, 3))), ad::InvalidArgumentError);
}

BOOST_AUTO_TEST_CASE(maximum_iterations_stops_an_endless_loop) {
  ad::Graph g;
  ad::WhileLoopOptions options;
  options.maximum_iterations = 7;
  const auto out = ad::while_loop(
      [&](const std::vector<ad::Tensor>&) { return ad::constant(g, ad::Array::scalar(true)); },
      [&](const std::vector<ad::Tensor>& v) { return std::vector<ad::Tensor>{v[0] * 2.0}; },
      {ad::scalar(g, 1.0, ad::DType::Float64)}, options);
  ad::Session s(g);
  BOOST_TEST(s.eval(out[0]).item<double>() == 128.0);
}

BOOST_AUTO_TEST_CASE(values_and_gradients_match_the_unrolled_graph) {
  ad::Graph g;
  auto v0 = ad::placeholder(g, ad::DType::Float64, {3}, "v0");
  auto w = ad::placeholder(g, ad::DType::Float64, {3}, "w");
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  const auto a = looped(v0, w, x, 4);
  const auto b = unrolled(v0, w, x, 4);
  const auto ga = ad::gradients(ad::reduce_sum(a * a), {v0, w, x});
  const auto gb = ad::gradients(ad::reduce_sum(b * b), {v0, w, x});
  ad::Session s(g);
  const ad::FeedDict feeds{{v0, ad::Array::from<double>({0.1, -0.4, 0.3}, {3})},
                           {w, ad::Array::from<double>({0.9, 1.3, -0.7}, {3})},
                           {x, ad::Array::scalar(0.2)}};
  const auto ra = s.run({a, ga[0], ga[1], ga[2]}, feeds);
  const auto rb = s.run({b, gb[0], gb[1], gb[2]}, feeds);
  for (std::size_t i = 0; i < ra.size(); ++i) {
    const auto pa = ra[i].data<double>();
    const auto pb = rb[i].data<double>();
    BOOST_REQUIRE(pa.size() == pb.size());
    for (std::size_t e = 0; e < pa.size(); ++e)
      BOOST_TEST(pa[e] == pb[e], boost::test_tools::tolerance(1e-13));
  }
}

BOOST_AUTO_TEST_CASE(gradients_of_first_and_second_order_match_finite_differences) {
  ad::testing::check_gradient(
      [](const std::vector<ad::Tensor>& in) {
        return ad::reduce_sum(looped(in[0], in[1], in[2], 3));
      },
      {ad::testing::random_array({3}, 1), ad::testing::random_array({3}, 2),
       ad::testing::random_array({}, 3)},
      1e-6, /*second_order=*/true);
}

BOOST_AUTO_TEST_CASE(second_order_matches_the_unrolled_graph) {
  ad::Graph g;
  auto v0 = ad::placeholder(g, ad::DType::Float64, {2}, "v0");
  auto w = ad::placeholder(g, ad::DType::Float64, {2}, "w");
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto hessian_row = [&](const ad::Tensor& y) {
    const auto first = ad::gradients(ad::reduce_sum(y), {w});
    return ad::gradients(ad::reduce_sum(first[0] * first[0]), {v0, w});
  };
  const auto ha = hessian_row(looped(v0, w, x, 3));
  const auto hb = hessian_row(unrolled(v0, w, x, 3));
  ad::Session s(g);
  const ad::FeedDict feeds{{v0, ad::Array::from<double>({0.3, -0.2}, {2})},
                           {w, ad::Array::from<double>({0.8, -1.1}, {2})},
                           {x, ad::Array::scalar(-0.1)}};
  for (int k = 0; k < 2; ++k) {
    const auto pa = s.eval(ha[static_cast<std::size_t>(k)], feeds);
    const auto pb = s.eval(hb[static_cast<std::size_t>(k)], feeds);
    for (std::size_t e = 0; e < 2; ++e) {
      BOOST_TEST(pa.data<double>()[e] == pb.data<double>()[e], boost::test_tools::tolerance(1e-12));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_cond_inside_the_body_takes_its_branch_per_iteration) {
  // Collatz-like: halve when above 1, else add 3; the gradient goes through both branches.
  auto f = [](const std::vector<ad::Tensor>& in) {
    ad::Graph& g = in[0].graph();
    const auto out = ad::while_loop(
        [&](const std::vector<ad::Tensor>& v) { return ad::less(v[0], i64(g, 5)); },
        [&](const std::vector<ad::Tensor>& v) {
          const auto big =
              ad::greater(ad::reduce_sum(v[1]), ad::scalar(g, 1.0, ad::DType::Float64));
          const auto next = ad::cond(
              big, [&] { return v[1] * in[1]; }, [&] { return ad::tanh(v[1]) + 3.0; });
          return std::vector<ad::Tensor>{v[0] + 1.0, next};
        },
        {i64(g, 0), in[0]});
    return ad::reduce_sum(out[1]);
  };
  ad::testing::check_gradient(
      f, {ad::Array::from<double>({0.3, 0.1}, {2}), ad::Array::from<double>({0.5, 0.45}, {2})},
      1e-6, true);
  // Values: sum over iterations worked out step by step in double.
  ad::Graph g;
  auto a = ad::constant(g, ad::Array::from<double>({0.3, 0.1}, {2}));
  auto w = ad::constant(g, ad::Array::from<double>({0.5, 0.45}, {2}));
  ad::Session s(g);
  double v[2] = {0.3, 0.1};
  for (int i = 0; i < 5; ++i) {
    if (v[0] + v[1] > 1.0) {
      v[0] *= 0.5;
      v[1] *= 0.45;
    } else {
      v[0] = std::tanh(v[0]) + 3.0;
      v[1] = std::tanh(v[1]) + 3.0;
    }
  }
  BOOST_TEST(s.eval(f({a, w})).item<double>() == v[0] + v[1], boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(a_loop_nested_in_a_loop_differentiates) {
  auto f = [](const std::vector<ad::Tensor>& in) {
    ad::Graph& g = in[0].graph();
    const auto outer = ad::while_loop(
        [&](const std::vector<ad::Tensor>& v) { return ad::less(v[0], i64(g, 3)); },
        [&](const std::vector<ad::Tensor>& v) {
          // Inner loop runs i + 1 times: x <- x * w + 0.1.
          const auto limit = v[0] + 1.0;
          const auto inner = ad::while_loop(
              [&](const std::vector<ad::Tensor>& u) { return ad::less(u[0], limit); },
              [&](const std::vector<ad::Tensor>& u) {
                return std::vector<ad::Tensor>{u[0] + 1.0, u[1] * in[1] + 0.1};
              },
              {i64(g, 0), v[1]}, named("inner"));
          return std::vector<ad::Tensor>{v[0] + 1.0, inner[1]};
        },
        {i64(g, 0), in[0]}, named("outer"));
    return ad::reduce_sum(outer[1]);
  };
  ad::testing::check_gradient(
      f, {ad::Array::from<double>({0.3, -0.6}, {2}), ad::Array::from<double>({0.9, 1.1}, {2})},
      1e-6, true);
  // Value: 1 + 2 + 3 = 6 applications of x <- x * w + 0.1.
  ad::Graph g;
  auto x = ad::constant(g, ad::Array::from<double>({0.3, -0.6}, {2}));
  auto w = ad::constant(g, ad::Array::from<double>({0.9, 1.1}, {2}));
  ad::Session s(g);
  double a = 0.3;
  double b = -0.6;
  for (int i = 0; i < 6; ++i) {
    a = a * 0.9 + 0.1;
    b = b * 1.1 + 0.1;
  }
  BOOST_TEST(s.eval(f({x, w})).item<double>() == a + b, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(variables_read_in_the_body_receive_gradients) {
  ad::Graph g;
  auto v = ad::Variable::create(
      g, "v",
      {.shape = {}, .dtype = ad::DType::Float64, .initializer = ad::initializers::constant(1.5)});
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  const auto out =
      ad::while_loop([&](const std::vector<ad::Tensor>& u) { return ad::less(u[0], i64(g, 3)); },
                     [&](const std::vector<ad::Tensor>& u) {
                       return std::vector<ad::Tensor>{u[0] + 1.0, u[1] * v.value()};
                     },
                     {i64(g, 0), x});
  const auto grads = ad::gradients(out[1], {v, x});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const ad::FeedDict feeds{{x, ad::Array::scalar(2.0)}};
  const auto r = s.run({out[1], grads[0], grads[1]}, feeds);
  BOOST_TEST(r[0].item<double>() == 2.0 * 1.5 * 1.5 * 1.5);
  BOOST_TEST(r[1].item<double>() == 3.0 * 2.0 * 1.5 * 1.5, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(r[2].item<double>() == 1.5 * 1.5 * 1.5, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(build_errors_name_the_loop_and_the_variable) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto cond = [&](const std::vector<ad::Tensor>& v) {
    return ad::less(ad::reduce_sum(v[0]), ad::scalar_like(v[0], 10.0));
  };
  BOOST_CHECK_EXCEPTION(
      (void)ad::while_loop(
          cond,
          [&](const std::vector<ad::Tensor>& v) {
            return std::vector<ad::Tensor>{ad::cast(v[0], ad::DType::Float32)};
          },
          {x}, named("grow")),
      ad::ValueError,
      (MessageHas{{"while_loop 'grow'", "loop variable 0", "'x:0'", "float64", "float32"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::while_loop(
          cond,
          [&](const std::vector<ad::Tensor>& v) {
            return std::vector<ad::Tensor>{ad::concat({v[0], v[0]}, 0)};
          },
          {x}, named("grow")),
      ad::ValueError,
      (MessageHas{{"while_loop 'grow_1'", "'x:0'", "[2]", "[4]", "shape_invariants"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::while_loop([&](const std::vector<ad::Tensor>& v) { return v[0]; },
                           [&](const std::vector<ad::Tensor>& v) { return v; }, {x}),
      ad::ValueError, (MessageHas{{"bool scalar"}}));
  ad::Tensor inner;
  (void)ad::while_loop(
      cond,
      [&](const std::vector<ad::Tensor>& v) {
        inner = v[0] + 1.0;
        return std::vector<ad::Tensor>{inner};
      },
      {x}, named("leak"));
  BOOST_CHECK_EXCEPTION((void)(inner * 2.0), ad::ValueError, (MessageHas{{"while loop"}}));
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(inner, {{x, ad::Array::from<double>({1, 2}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"inside while loop 'leak'"}}));
}

BOOST_AUTO_TEST_CASE(shape_invariants_let_a_variable_grow_and_are_checked_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {1}, "x");
  ad::WhileLoopOptions options;
  options.shape_invariants = {ad::Shape{-1}};
  options.name = "doubling";
  const auto grown = ad::while_loop(
      [&](const std::vector<ad::Tensor>& v) { return ad::less(ad::size(v[0]), i64(g, 8)); },
      [&](const std::vector<ad::Tensor>& v) {
        return std::vector<ad::Tensor>{ad::concat({v[0], v[0] * 2.0}, 0)};
      },
      {x}, options);
  ad::Session s(g);
  const auto r = s.eval(grown[0], {{x, ad::Array::from<double>({1}, {1})}});
  BOOST_TEST(r.shape() == ad::Shape({8}));
  BOOST_TEST(r.data<double>()[7] == 8.0);
  // A body whose static shape is unknown but whose run-time shape leaves the invariant [2].
  auto p = ad::placeholder(g, ad::DType::Float64, {-1}, "p");
  auto y = ad::placeholder(g, ad::DType::Float64, {2}, "y");
  const auto bad = ad::while_loop(
      [&](const std::vector<ad::Tensor>& v) {
        return ad::less(ad::reduce_sum(v[0]), ad::scalar_like(v[0], 1.0));
      },
      [&](const std::vector<ad::Tensor>&) { return std::vector<ad::Tensor>{p * 1.0}; }, {y},
      named("fixed"));
  BOOST_CHECK_EXCEPTION(
      s.eval(bad[0], {{y, ad::Array::from<double>({0, 0}, {2})},
                      {p, ad::Array::from<double>({1, 2, 3}, {3})}}),
      ad::InvalidArgumentError,
      (MessageHas{{"while_loop 'fixed'", "'y:0'", "[3]", "shape invariant [2]"}}));
}

BOOST_AUTO_TEST_CASE(map_fn_foldl_and_scan_compute_and_differentiate) {
  ad::Graph g;
  auto elems = ad::constant(g, ad::Array::from<double>({1, 2, 3, 4, 5, 6}, {3, 2}));
  auto init = ad::constant(g, ad::Array::from<double>({0.5, -1}, {2}));
  const auto squares = ad::map_fn([](const ad::Tensor& e) { return e * e; }, elems);
  const auto total =
      ad::foldl([](const ad::Tensor& acc, const ad::Tensor& e) { return acc + e; }, elems, init);
  const auto prefix =
      ad::scan([](const ad::Tensor& acc, const ad::Tensor& e) { return acc * e; }, elems, init);
  ad::Session s(g);
  const auto r = s.run({squares, total, prefix});
  BOOST_TEST(r[0].shape() == ad::Shape({3, 2}));
  BOOST_TEST(r[0].data<double>()[5] == 36.0);
  BOOST_TEST(r[1].data<double>()[0] == 9.5);
  BOOST_TEST(r[1].data<double>()[1] == 11.0);
  BOOST_TEST(r[2].shape() == ad::Shape({3, 2}));
  const std::vector<double> expected_prefix{0.5, -2, 1.5, -8, 7.5, -48};
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(r[2].data<double>()[i] == expected_prefix[i]);
  ad::testing::check_gradient(
      [](const std::vector<ad::Tensor>& in) {
        return ad::reduce_sum(
            ad::map_fn([](const ad::Tensor& e) { return ad::tanh(e) * e; }, in[0]));
      },
      {ad::testing::random_array({3, 2}, 5)}, 1e-6, true);
  ad::testing::check_gradient(
      [](const std::vector<ad::Tensor>& in) {
        return ad::reduce_sum(
            ad::scan([](const ad::Tensor& acc, const ad::Tensor& e) { return ad::tanh(acc * e); },
                     in[0], in[1]));
      },
      {ad::testing::random_array({4, 2}, 6), ad::testing::random_array({2}, 7)}, 1e-6, true);
  ad::testing::check_gradient(
      [](const std::vector<ad::Tensor>& in) {
        return ad::reduce_sum(ad::foldl(
            [](const ad::Tensor& acc, const ad::Tensor& e) { return acc * e + e; }, in[0], in[1]));
      },
      {ad::testing::random_array({3, 2}, 8), ad::testing::random_array({2}, 9)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(back_prop_false_stops_gradients) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  ad::WhileLoopOptions options;
  options.back_prop = false;
  const auto out =
      ad::while_loop([&](const std::vector<ad::Tensor>& v) { return ad::less(v[0], i64(g, 2)); },
                     [&](const std::vector<ad::Tensor>& v) {
                       return std::vector<ad::Tensor>{v[0] + 1.0, v[1] * x};
                     },
                     {i64(g, 0), x}, options);
  const auto grads = ad::gradients(out[1], {x});
  BOOST_TEST(!static_cast<bool>(grads[0]));
}

BOOST_AUTO_TEST_SUITE_END()
