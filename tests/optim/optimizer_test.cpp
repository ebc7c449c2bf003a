// The Optimizer flow shared by all optimizers: compute_gradients (None gradients, summed reads,
// checks), apply_gradients (skipping None, errors), the train op's name and TRAIN_OP collection,
// the global step, hyper-parameters, slots and the errors users meet.
#include "optim/optimizer.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "autodiff/internal/storage_stats.h"
#include "optim/adam.h"
#include "optim/gradient_descent.h"
#include "optim/momentum.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

BOOST_AUTO_TEST_SUITE(optimizer_test)

BOOST_AUTO_TEST_CASE(compute_gradients_defaults_to_trainable_variables_and_keeps_none) {
  ad::Graph g;
  auto a = make_variable(g, "a", {2.0}, {1});
  auto unused = make_variable(g, "unused", {5.0}, {1});
  auto frozen = ad::Variable::create(g, "frozen", {.shape = {1}, .trainable = false});
  auto loss = ad::reduce_sum(a.value() * a.value());
  ad::optim::GradientDescent sgd;
  const auto grads_and_vars = sgd.compute_gradients(loss);
  BOOST_TEST_REQUIRE(grads_and_vars.size() == 2U);  // not the non-trainable "frozen"
  BOOST_TEST(grads_and_vars[0].second.name() == "a");
  BOOST_TEST(static_cast<bool>(grads_and_vars[0].first));
  BOOST_TEST(grads_and_vars[1].second.name() == "unused");
  BOOST_TEST(!grads_and_vars[1].first);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.eval(grads_and_vars[0].first).flat(0) == 4.0);
  (void)unused;
  (void)frozen;
}

BOOST_AUTO_TEST_CASE(a_variable_read_several_times_gets_the_sum_of_its_gradients) {
  ad::Graph g;
  auto w = make_variable(g, "w", {2.0}, {});
  auto loss = w.value() * 3.0 + w.value() * w.value();  // d/dw = 3 + 2w = 7
  ad::optim::GradientDescent sgd({.learning_rate = 0.1});
  auto train = sgd.minimize(loss);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  BOOST_TEST(s.value(w).flat(0) == 2.0 - 0.1 * 7.0, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(pairs_without_a_gradient_are_skipped) {
  ad::Graph g;
  auto a = make_variable(g, "a", {2.0}, {1});
  auto b = make_variable(g, "b", {5.0}, {1});
  auto loss = ad::reduce_sum(a.value() * 3.0);
  ad::optim::Momentum opt({.learning_rate = 0.5, .momentum = 0.9});
  auto train = opt.minimize(loss, {}, {a, b});
  BOOST_CHECK_EXCEPTION((void)opt.get_slot(b, "momentum"), ad::ValueError,
                        (MessageHas{{"no slot 'momentum' for variable 'b'", "has no slots"}}));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  BOOST_TEST(s.value(a).flat(0) == 2.0 - 0.5 * 3.0);
  BOOST_TEST(s.value(b).flat(0) == 5.0);
}

BOOST_AUTO_TEST_CASE(no_gradient_for_any_variable_is_a_value_error_naming_the_loss) {
  ad::Graph g;
  auto a = make_variable(g, "a", {2.0}, {1});
  auto x = ad::placeholder(g, ad::DType::Float64, {1}, "x");
  auto loss = ad::reduce_sum(x * 2.0);
  ad::optim::Adam adam;
  BOOST_CHECK_EXCEPTION((void)adam.minimize(loss), ad::ValueError,
                        (MessageHas{{"no gradients provided for any variable", "'a'",
                                     "loss '" + loss.name() + "'"}}));
  BOOST_CHECK_EXCEPTION((void)adam.apply_gradients({{ad::Tensor(), a}}), ad::ValueError,
                        (MessageHas{{"Adam.apply_gradients", "no gradients provided", "['a']"}}));
  // Nothing was recorded for the failed calls: no slots, no train op.
  BOOST_TEST(g.get_collection(ad::GraphKeys::TRAIN_OP).empty());
  BOOST_TEST(adam.variables().empty());
}

BOOST_AUTO_TEST_CASE(building_mistakes_are_value_errors_with_names_and_shapes) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::GradientDescent sgd;
  BOOST_CHECK_EXCEPTION((void)sgd.apply_gradients({{make_constant(g, {1, 2, 3}, {3}), w}}),
                        ad::ValueError,
                        (MessageHas{{"GradientDescent.apply_gradients", "is float64[3]",
                                     "variable 'w' is float64[2, 3]"}}));
  BOOST_CHECK_EXCEPTION(
      (void)sgd.apply_gradients({{make_constant(g, kGrad, kShape, ad::DType::Float32), w}}),
      ad::ValueError, (MessageHas{{"is float32[2, 3]", "variable 'w' is float64[2, 3]"}}));
  BOOST_TEST(g.find_node("GradientDescent") < 0);  // the failed calls recorded no train op
  auto grad = make_constant(g, kGrad, kShape);
  BOOST_CHECK_EXCEPTION((void)sgd.apply_gradients({{grad, w}, {grad, w}}), ad::ValueError,
                        (MessageHas{{"'w' appears twice"}}));
  ad::VariableOptions int_options;
  int_options.dtype = ad::DType::Int64;
  int_options.shape = {2};
  auto counter = ad::Variable::create(g, "counter", int_options);
  auto loss = ad::reduce_sum(w.value());
  BOOST_CHECK_EXCEPTION((void)sgd.compute_gradients(loss, {w, counter}), ad::ValueError,
                        (MessageHas{{"variable 'counter' is int64", "float32 and float64"}}));
  BOOST_CHECK_EXCEPTION((void)sgd.minimize(ad::cast(loss, ad::DType::Int64)), ad::ValueError,
                        (MessageHas{{"loss", "int64", "must be floating"}}));
  auto lr_vector = make_constant(g, {0.1, 0.2}, {2});
  BOOST_CHECK_EXCEPTION(ad::optim::Hyperparameter{lr_vector}, ad::ValueError,
                        (MessageHas{{"must be a floating scalar", "[2]"}}));
}

BOOST_AUTO_TEST_CASE(a_gradient_of_the_wrong_run_time_shape_is_an_invalid_argument_error) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1, 2, 3}, {3});
  auto grad = ad::placeholder(g, ad::DType::Float64, {-1}, "grad");
  ad::optim::GradientDescent sgd;
  auto train = sgd.apply_gradients({{grad, w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_CHECK_EXCEPTION(
      s.run({train}, {{grad, ad::Array::from<double>({1, 2}, {2})}}), ad::InvalidArgumentError,
      (MessageHas{{"ApplyGradientDescent 'GradientDescent/update_w/ApplyGradientDescent'",
                   "gradient has shape [2]", "variable 'w' has shape [3]"}}));
  BOOST_TEST(s.value(w).flat(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(running_before_initializing_the_slots_names_the_slot) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  auto init_model = ad::global_variables_initializer(g);  // before the optimizer: no slots
  ad::optim::Adam adam;
  auto train = adam.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  ad::Session s(g);
  s.run({init_model});
  BOOST_CHECK_EXCEPTION(s.run({train}), ad::FailedPreconditionError,
                        (MessageHas{{"uninitialized variable", "beta1_power"}}));
}

BOOST_AUTO_TEST_CASE(the_train_op_is_named_after_the_optimizer_and_collected) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  auto grad = make_constant(g, kGrad, kShape);
  ad::optim::GradientDescent sgd;
  auto first = sgd.apply_gradients({{grad, w}});
  auto second = sgd.apply_gradients({{grad, w}});
  auto named = sgd.apply_gradients({{grad, w}}, {}, "train");
  BOOST_TEST(first.is_op());
  BOOST_TEST(first.name() == "GradientDescent");
  BOOST_TEST(second.name() == "GradientDescent_1");
  BOOST_TEST(named.name() == "train");
  BOOST_TEST(g.find_node("GradientDescent_1/update_w/ApplyGradientDescent") >= 0);
  BOOST_TEST(g.find_node("train/update_w/ApplyGradientDescent") >= 0);
  const auto collected = g.get_collection(ad::GraphKeys::TRAIN_OP);
  BOOST_TEST_REQUIRE(collected.size() == 3U);
  BOOST_TEST((collected[0] == first && collected[1] == second && collected[2] == named));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto out = s.run({first});
  BOOST_TEST(out[0].empty());
}

BOOST_AUTO_TEST_CASE(the_global_step_is_an_int64_scalar_incremented_after_the_updates) {
  ad::Graph g;
  auto step = ad::optim::get_or_create_global_step(g);
  BOOST_TEST(step.name() == "global_step");
  BOOST_TEST(step.dtype() == ad::DType::Int64);
  BOOST_TEST(step.shape() == ad::Shape{});
  BOOST_TEST(!step.trainable());
  BOOST_TEST((ad::optim::get_or_create_global_step(g) == step));
  BOOST_TEST(g.get_collection(ad::GraphKeys::GLOBAL_STEP).size() == 1U);
  BOOST_TEST(ad::global_variables(g).size() == 1U);
  BOOST_TEST(ad::trainable_variables(g).empty());

  auto w = make_variable(g, "w", {1.0}, {1});
  ad::optim::Adam adam({.learning_rate = 0.1});
  auto train = adam.minimize(ad::reduce_sum(w.value()), step);
  BOOST_TEST(train.name() == "Adam");
  BOOST_TEST(g.find_node("Adam/update") >= 0);
  BOOST_TEST((g.get_collection(ad::GraphKeys::TRAIN_OP).back() == train));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.value(step).data<std::int64_t>()[0] == 0);
  for (int i = 0; i < 3; ++i) s.run({train});
  BOOST_TEST(s.value(step).data<std::int64_t>()[0] == 3);
  BOOST_TEST(s.value(variable_named(g, "beta1_power")).flat(0) == 0.9 * 0.9 * 0.9 * 0.9,
             boost::test_tools::tolerance(1e-15));

  ad::Graph other;
  auto float_step = make_variable(other, "global_step", {0.0}, {});
  BOOST_CHECK_EXCEPTION(
      (void)ad::optim::get_or_create_global_step(other), ad::ValueError,
      (MessageHas{{"global step 'global_step' must be an int64 scalar", "float64[]"}}));
  (void)float_step;
}

BOOST_AUTO_TEST_CASE(hyper_parameters_may_be_tensors_computed_at_run_time) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0}, {1});
  auto momentum = ad::placeholder(g, ad::DType::Float64, {}, "momentum");
  ad::optim::Momentum opt({.learning_rate = 1.0, .momentum = momentum});
  auto train = opt.apply_gradients({{make_constant(g, {1.0}, {1}), w}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train}, {{momentum, ad::Array::scalar(0.5)}});  // a = 1, w = 0
  s.run({train}, {{momentum, ad::Array::scalar(0.0)}});  // a = 1, w = -1
  s.run({train}, {{momentum, ad::Array::scalar(2.0)}});  // a = 3, w = -4
  BOOST_TEST(s.value(w).flat(0) == -4.0);
}

BOOST_AUTO_TEST_CASE(a_variable_read_inside_a_cond_branch_is_trained_when_that_branch_runs) {
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0}, {1});
  auto use_w = ad::placeholder(g, ad::DType::Bool, {}, "use_w");
  auto x = make_constant(g, {2.0}, {1});
  auto y = ad::cond(
      use_w, [&] { return w.value() * x; }, [&] { return x * 3.0; });
  ad::optim::GradientDescent sgd({.learning_rate = 0.25});
  auto train = sgd.minimize(ad::reduce_sum(y));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train}, {{use_w, ad::Array::scalar(true)}});  // d/dw = x = 2
  BOOST_TEST(s.value(w).flat(0) == 0.5);
  s.run({train}, {{use_w, ad::Array::scalar(false)}});  // w does not reach y: gradient 0
  BOOST_TEST(s.value(w).flat(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(minimize_under_control_dependencies_runs_them_first) {
  // The TF1 idiom: with control_dependencies(UPDATE_OPS): train_op = opt.minimize(loss).
  ad::Graph g;
  auto w = make_variable(g, "w", {1.0}, {1});
  auto counter = make_variable(g, "counter", {0.0}, {});
  auto update = counter.assign_add(ad::scalar(g, 1.0, ad::DType::Float64));
  ad::Tensor train;
  {
    const ad::ControlDependencies deps({update});
    ad::optim::Adam adam;
    train = adam.minimize(ad::reduce_sum(w.value()));
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train});
  s.run({train});
  BOOST_TEST(s.value(counter).flat(0) == 2.0);
  BOOST_TEST(s.value(w).flat(0) < 1.0);
}

BOOST_AUTO_TEST_CASE(get_slot_names_the_slots_that_exist) {
  ad::Graph g;
  auto w = make_variable(g, "w", kInitialW, kShape);
  ad::optim::Adam adam;
  (void)adam.apply_gradients({{make_constant(g, kGrad, kShape), w}});
  BOOST_CHECK_EXCEPTION((void)adam.get_slot(w, "momentum"), ad::ValueError,
                        (MessageHas{{"Adam.get_slot", "no slot 'momentum' for variable 'w'",
                                     "its slots are 'm', 'v'"}}));
}

BOOST_AUTO_TEST_CASE(a_steady_state_step_allocates_no_new_buffers) {
  ad::Graph g;
  auto w = make_variable(g, "w", std::vector<double>(64, 0.5), {8, 8});
  auto x = ad::placeholder(g, ad::DType::Float64, {4, 8}, "x");
  auto loss = ad::reduce_mean(ad::square(ad::matmul(x, w.value())));
  ad::optim::Adam adam;
  auto train = adam.minimize(loss, ad::optim::get_or_create_global_step(g));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const ad::FeedDict feeds = {{x, ad::testing::random_array({4, 8}, 7)}};
  s.run({train}, feeds);
  s.run({train}, feeds);
  const auto before = ad::detail::storage_allocations();
  for (int i = 0; i < 5; ++i) s.run({train}, feeds);
  BOOST_TEST(ad::detail::storage_allocations() == before);
}

BOOST_AUTO_TEST_SUITE_END()
