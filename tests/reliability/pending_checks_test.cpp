// Issue 18 checks outside the data, array and schedule files:
//   - With SessionOptions::check_numerics, a write of NaN or Inf into a variable (assign of a fed
//     value, assign_add that overflows, an optimizer update) fails BEFORE the variable holds it:
//     the VariableStore applies a checked session's updates to a copy and commits only finite
//     values.
//   - custom_gradient whose gradient function returns a tensor of the wrong shape or dtype, or of
//     another graph, raises ValueError naming the custom_gradient node and the input (not
//     InternalError from GradContext::set, nor a crash).
#include <boost/test/unit_test.hpp>
#include <limits>
#include <vector>

#include "autodiff/autodiff.h"
#include "optim/gradient_descent.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace utf = boost::unit_test;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kBig = 3e38f;  // 2 * kBig overflows float32
}  // namespace

BOOST_AUTO_TEST_SUITE(pending_checks_test)

// The controls the fixes must keep passing: finite writes under check_numerics and a well-formed
// custom gradient give their closed-form results.
BOOST_AUTO_TEST_CASE(finite_writes_pass_check_numerics_and_land) {
  ad::Graph g;
  auto w = ad::get_variable(g, "w", {.shape = {2}, .initializer = ad::initializers::constant(1.0)});
  auto v = ad::placeholder(g, ad::DType::Float32, {2}, "v");
  auto add = w.assign_add(v);
  auto loss = ad::reduce_sum(w.value() * v);
  ad::optim::GradientDescent sgd({.learning_rate = 0.5});
  auto step = sgd.minimize(loss);
  ad::Session s(g, {.check_numerics = true});
  s.run({ad::global_variables_initializer(g)});
  (void)s.run({add}, {{v, ad::Array::from<float>({2.0f, -4.0f}, {2})}});  // w = [3, -3]
  (void)s.run({step}, {{v, ad::Array::from<float>({2.0f, 1.0f}, {2})}});  // w -= 0.5 * v
  BOOST_TEST(s.value(w).data<float>()[0] == 2.0f);
  BOOST_TEST(s.value(w).data<float>()[1] == -3.5f);
}

BOOST_AUTO_TEST_CASE(a_well_formed_custom_gradient_is_used) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {4}, "x");
  const auto outs = ad::custom_gradient(
      {x}, [](const std::vector<ad::Tensor>& in) { return std::vector{in[0] * 2.0}; },
      [](const std::vector<ad::Tensor>& in, const std::vector<ad::Tensor>&,
         const std::vector<ad::Tensor>& grads) { return std::vector{grads[0] * 3.0 + in[0]}; });
  auto grad = ad::gradients(ad::reduce_sum(outs[0]), {x})[0];
  ad::Session s(g);
  const auto value = s.eval(grad, {{x, ad::Array::from<float>({1, 2, 3, 4}, {4})}});
  BOOST_TEST(value.data<float>()[3] == 7.0f);  // 3 * 1 + x
}

BOOST_AUTO_TEST_CASE(check_numerics_refuses_a_write_before_the_variable_holds_it) {
  ad::Graph g;
  auto w =
      ad::get_variable(g, "w", {.shape = {2}, .initializer = ad::initializers::constant(kBig)});
  auto v = ad::placeholder(g, ad::DType::Float32, {2}, "v");
  auto assign = w.assign(v);
  auto add = w.assign_add(v);
  auto loss = ad::reduce_sum(w.value() * v);
  ad::optim::GradientDescent sgd({.learning_rate = 1e38});
  auto step = sgd.minimize(loss);
  ad::Session s(g, {.check_numerics = true});
  s.run({ad::global_variables_initializer(g)});
  const ad::Array before = s.value(w).clone();
  const auto nan = ad::Array::from<float>({1.0f, kNaN}, {2});
  const auto big = ad::Array::from<float>({kBig, kBig}, {2});
  // The NaN is fed, so no earlier node's output check sees it; the assign must refuse it.
  BOOST_CHECK_EXCEPTION((void)s.run({assign}, {{v, nan}}), ad::InvalidArgumentError,
                        (MessageHas{{"check_numerics", "'w'"}}));
  BOOST_TEST(s.value(w).bitwise_equal(before));
  // Finite inputs whose sum overflows: the Inf exists only inside the update.
  BOOST_CHECK_EXCEPTION((void)s.run({add}, {{v, big}}), ad::InvalidArgumentError,
                        (MessageHas{{"check_numerics", "'w'"}}));
  BOOST_TEST(s.value(w).bitwise_equal(before));
  // The loss (-kBig) and the gradient v are finite; w - 1e38 * (-1) overflows inside the
  // optimizer's update kernel.
  BOOST_CHECK_EXCEPTION((void)s.run({step}, {{v, ad::Array::from<float>({-1.0f, 0.0f}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"check_numerics", "'w'"}}));
  BOOST_TEST(s.value(w).bitwise_equal(before));
  // The session goes on.
  (void)s.run({assign}, {{v, ad::Array::from<float>({1.0f, 2.0f}, {2})}});
  BOOST_TEST(s.value(w).data<float>()[1] == 2.0f);
}

BOOST_AUTO_TEST_CASE(a_custom_gradient_of_the_wrong_shape_is_a_value_error) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {4}, "x");
  const auto outs = ad::custom_gradient(
      {x}, [](const std::vector<ad::Tensor>& in) { return std::vector{in[0] * 2.0}; },
      [&](const std::vector<ad::Tensor>&, const std::vector<ad::Tensor>&,
          const std::vector<ad::Tensor>&) {
        return std::vector{ad::fill(g, {5}, 1.0, ad::DType::Float32)};
      });
  BOOST_CHECK_EXCEPTION((void)ad::gradients(ad::reduce_sum(outs[0]), {x}), ad::ValueError,
                        (MessageHas{{"custom_gradient", "input 0", "[5]", "[4]"}}));
  // The graph is still usable: the forward pass runs.
  ad::Session s(g);
  const auto y = s.eval(outs[0], {{x, ad::Array::from<float>({1, 2, 3, 4}, {4})}});
  BOOST_TEST(y.data<float>()[3] == 8.0f);
}

BOOST_AUTO_TEST_CASE(a_custom_gradient_of_another_graph_is_a_value_error) {
  ad::Graph g;
  ad::Graph other;
  auto x = ad::placeholder(g, ad::DType::Float32, {4}, "x");
  const auto outs = ad::custom_gradient(
      {x}, [](const std::vector<ad::Tensor>& in) { return std::vector{in[0] * 2.0}; },
      [&](const std::vector<ad::Tensor>&, const std::vector<ad::Tensor>&,
          const std::vector<ad::Tensor>&) {
        return std::vector{ad::fill(other, {4}, 1.0, ad::DType::Float32)};
      });
  BOOST_CHECK_EXCEPTION((void)ad::gradients(ad::reduce_sum(outs[0]), {x}), ad::ValueError,
                        (MessageHas{{"custom_gradient", "input 0", "another graph"}}));
}

BOOST_AUTO_TEST_SUITE_END()
