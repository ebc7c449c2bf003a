// cond, smart_cond, group and control dependencies.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(control_test)

BOOST_AUTO_TEST_CASE(cond_runs_only_the_taken_branch_value_and_gradient) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {3}, "x");
  auto pred = ad::placeholder(g, ad::DType::Bool, {}, "pred");
  // The false branch takes log of a negative number: NaN if it ever ran or leaked.
  auto y = ad::cond(
      pred, [&] { return x * x; }, [&] { return ad::log(x * -1.0) * x; });
  auto dx = ad::gradients(y, {x})[0];
  ad::Session s(g, {.check_numerics = true});  // any NaN computed anywhere would throw
  const auto xv = ad::Array::from<double>({1, 2, 3}, {3});
  const auto on = s.run({y, dx}, {{x, xv}, {pred, ad::Array::scalar(true)}});
  BOOST_TEST(on[0].data<double>()[2] == 9.0);
  BOOST_TEST(on[1].data<double>()[2] == 6.0);
  // The other way: with x negative, the true branch is fine too, and the false branch is taken.
  const auto xn = ad::Array::from<double>({-1, -2, -4}, {3});
  const auto off = s.run({y, dx}, {{x, xn}, {pred, ad::Array::scalar(false)}});
  BOOST_TEST(off[0].data<double>()[2] == std::log(4.0) * -4.0, boost::test_tools::tolerance(1e-12));
  // d/dx [log(-x) x] = log(-x) + 1
  BOOST_TEST(off[1].data<double>()[2] == std::log(4.0) + 1.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(untaken_branch_that_would_throw_does_not_run) {
  ad::Graph g;
  auto pred = ad::placeholder(g, ad::DType::Bool, {}, "pred");
  auto missing = ad::placeholder(g, ad::DType::Float64, {2}, "missing");
  auto a = ad::placeholder(g, ad::DType::Float64, {2}, "a");
  auto b = ad::placeholder(g, ad::DType::Float64, {3}, "b");
  // The false branch adds [2] + [3]: a run-time error if it ran.
  auto y = ad::cond(
      pred, [&] { return a * 2.0; }, [&] { return ad::sum_to_shape_of(a, b) + 0.0; });
  (void)missing;
  ad::Session s(g);
  const auto out = s.eval(y, {{pred, ad::Array::scalar(true)},
                              {a, ad::Array::from<double>({1, 2}, {2})},
                              {b, ad::Array(ad::DType::Float64, {3})}});
  BOOST_TEST(out.data<double>()[1] == 4.0);
  BOOST_CHECK_THROW(s.eval(y, {{pred, ad::Array::scalar(false)},
                               {a, ad::Array::from<double>({1, 2}, {2})},
                               {b, ad::Array(ad::DType::Float64, {3})}}),
                    ad::InvalidArgumentError);
}

BOOST_AUTO_TEST_CASE(cond_gradient_matches_finite_differences_both_ways) {
  for (const bool taken : {true, false}) {
    ad::Graph g;
    auto x = ad::placeholder(g, ad::DType::Float64, {4}, "x");
    auto pred = ad::placeholder(g, ad::DType::Bool, {}, "pred");
    auto y = ad::cond(
        pred, [&] { return ad::tanh(x) * x; }, [&] { return ad::exp(x) * x; });
    ad::Session s(g);
    const auto r = ad::compute_gradient_error(s, {x}, {ad::testing::random_array({4}, 3)}, y,
                                              {{pred, ad::Array::scalar(taken)}});
    BOOST_TEST(r.max_error < 1e-7, r.worst);
  }
}

BOOST_AUTO_TEST_CASE(smart_cond_with_a_bool_records_one_branch) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  const int before = g.num_nodes();
  auto y = ad::smart_cond(
      true, [&] { return x * 2.0; }, [&] { return x * 3.0; });
  BOOST_TEST(g.num_nodes() - before == 2);  // one constant and one Mul
  auto c = ad::constant(g, ad::Array::scalar(false));
  auto z = ad::smart_cond(
      c, [&] { return x * 2.0; }, [&] { return x * 3.0; });
  ad::Session s(g);
  BOOST_TEST(s.eval(y, {{x, ad::Array::scalar(1.0)}}).item<double>() == 2.0);
  BOOST_TEST(s.eval(z, {{x, ad::Array::scalar(1.0)}}).item<double>() == 3.0);
}

BOOST_AUTO_TEST_CASE(cond_rejects_non_bool_predicate_and_mismatched_branches) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto p = ad::placeholder(g, ad::DType::Float32, {}, "p");
  BOOST_CHECK_EXCEPTION((void)ad::cond(
                            p, [&] { return x; }, [&] { return x; }),
                        ad::ValueError,
                        (MessageHas{{"cond", "'p:0'", "bool scalar", "float32[]"}}));
  auto b = ad::placeholder(g, ad::DType::Bool, {}, "b");
  BOOST_CHECK_EXCEPTION((void)ad::cond(
                            b, [&] { return x; }, [&] { return ad::cast(x, ad::DType::Float32); }),
                        ad::ValueError, (MessageHas{{"float64", "float32"}}));
}

BOOST_AUTO_TEST_CASE(a_branch_value_cannot_escape_without_merge) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto b = ad::placeholder(g, ad::DType::Bool, {}, "b");
  ad::Tensor inner;
  (void)ad::cond(
      b,
      [&] {
        inner = x * 2.0;
        return inner;
      },
      [&] { return x; });
  BOOST_CHECK_EXCEPTION((void)(inner + 1.0), ad::ValueError, (MessageHas{{"cond branch"}}));
}

BOOST_AUTO_TEST_CASE(control_dependencies_order_assignments_and_reads) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {}, .dtype = ad::DType::Float64});
  auto update = v.assign_add(ad::scalar(g, 5.0, ad::DType::Float64));
  ad::Tensor after;
  {
    ad::ControlDependencies deps({update});
    after = v.value();
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.eval(after).item<double>() == 5.0);
  BOOST_TEST(s.eval(after).item<double>() == 10.0);
  auto both = ad::group({update, update}, "twice");
  s.run({both});  // one node, so it runs once
  BOOST_TEST(s.value(v).item<double>() == 15.0);
}

BOOST_AUTO_TEST_CASE(group_of_an_empty_collection_is_skipped) {
  // TF1's idiom group(train_op, group(UPDATE_OPS)) must work for models without update ops.
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {}, .dtype = ad::DType::Float64});
  auto inc = v.assign_add(ad::scalar(g, 1.0, ad::DType::Float64));
  const auto nothing = ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS));
  BOOST_TEST(!static_cast<bool>(nothing));
  auto step = ad::group({inc, nothing});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({step});
  BOOST_TEST(s.value(v).item<double>() == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
