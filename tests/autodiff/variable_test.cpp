// Variable core: creation, reads, assignments, initialization and the uninitialized error.
#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(variable_test)

BOOST_AUTO_TEST_CASE(reading_an_uninitialized_variable_names_it) {
  ad::Graph g;
  auto w = ad::Variable::create(g, "layer/w", {.shape = {3, 2}});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(w.value() * 2.0), ad::FailedPreconditionError,
                        (MessageHas{{"uninitialized", "'layer/w'", "float32[3, 2]"}}));
  s.run({w.initializer()});
  BOOST_TEST(s.eval(w.value()).shape() == ad::Shape({3, 2}));
}

BOOST_AUTO_TEST_CASE(assign_ops_update_the_session_value) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {2}, .dtype = ad::DType::Float64});
  auto c = ad::constant(g, ad::Array::from<double>({1, 2}, {2}));
  auto set = v.assign(c);
  auto add = v.assign_add(c);
  auto sub = v.assign_sub(c * 3.0);
  ad::Session s(g);
  s.run({set});
  s.run({add});
  BOOST_TEST(s.value(v).data<double>()[1] == 4.0);
  s.run({sub});
  BOOST_TEST(s.value(v).data<double>()[1] == -2.0);
}

BOOST_AUTO_TEST_CASE(a_read_keeps_its_value_when_the_variable_changes_later) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {}, .dtype = ad::DType::Float64});
  auto before = v.value();
  auto inc = v.assign_add(ad::scalar(g, 1.0, ad::DType::Float64));
  ad::Tensor doubled;
  {
    ad::ControlDependencies deps({inc});
    doubled = before * 2.0;  // uses the read recorded before the increment
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.eval(doubled).item<double>() == 0.0);
  BOOST_TEST(s.value(v).item<double>() == 1.0);
}

BOOST_AUTO_TEST_CASE(gradient_with_respect_to_a_variable_sums_all_reads) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {}, .dtype = ad::DType::Float64});
  auto y = v.value() * 3.0 + v.value() * v.value();
  auto dv = ad::gradients(y, {v})[0];
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.set_value(v, ad::Array::scalar(2.0));
  BOOST_TEST(s.eval(dv).item<double>() == 7.0);
}

BOOST_AUTO_TEST_CASE(collections_and_initializer) {
  ad::Graph g;
  auto a = ad::Variable::create(g, "a", {.shape = {2}});
  auto b = ad::Variable::create(g, "b", {.shape = {2}, .trainable = false});
  BOOST_TEST(ad::global_variables(g).size() == 2u);
  BOOST_TEST(ad::trainable_variables(g).size() == 1u);
  BOOST_TEST(ad::trainable_variables(g)[0].name() == "a");
  BOOST_TEST(a.handle().name() == "a:0");
  BOOST_CHECK_EXCEPTION((void)ad::Variable::create(g, "a", {.shape = {2}}), ad::ValueError,
                        (MessageHas{{"Variable a already exists"}}));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.is_initialized(b));
}

BOOST_AUTO_TEST_CASE(set_value_checks_dtype_and_shape) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {2}});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.set_value(v, ad::Array(ad::DType::Float32, {3})), ad::ValueError,
                        (MessageHas{{"'v'", "float32[2]", "float32[3]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
