// Handles that point nowhere: a tensor whose graph was destroyed and forged handles reaching
// entries other than Session::run (gradients, group, feeds of an op without outputs) are ad::Errors
// whose messages are built without following the handle, and the session keeps working.
#include <boost/test/unit_test.hpp>
#include <memory>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(handles_test)

BOOST_AUTO_TEST_CASE(a_tensor_of_a_destroyed_graph_is_refused_without_reading_it) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  const auto y = x * 2.0;
  ad::Session s(g);
  const ad::FeedDict feeds{{x, ad::Array::from<float>({1.f, 2.f}, {2})}};
  ad::Tensor stale;
  {
    auto gone = std::make_unique<ad::Graph>();
    stale = ad::placeholder(*gone, ad::DType::Float32, {2}, "gone") + 1.0;
  }
  // Under AddressSanitizer, a message read from the destroyed graph is a use after free.
  BOOST_CHECK_EXCEPTION((void)s.eval(stale), ad::InvalidArgumentError,
                        (MessageHas{{"of a destroyed graph", "belongs to another graph"}}));
  BOOST_CHECK_EXCEPTION((void)s.run({y}, {{stale, ad::Array::from<float>({1.f, 2.f}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"of a destroyed graph"}}));
  BOOST_CHECK_EXCEPTION((void)s.run_count(stale), ad::ValueError,
                        (MessageHas{{"of a destroyed graph"}}));
  BOOST_TEST(stale.name().find("destroyed graph") != std::string::npos);
  BOOST_TEST(s.eval(y, feeds).data<float>()[1] == 4.f);
}

BOOST_AUTO_TEST_CASE(forged_handles_in_gradients_and_groups_are_value_errors) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  const auto loss = ad::reduce_sum(ad::square(x));
  ad::Session s(g);
  BOOST_CHECK_THROW((void)ad::gradients(ad::Tensor(&g, loss.node_index(), 7), {x}), ad::ValueError);
  BOOST_CHECK_THROW((void)ad::gradients(loss, {ad::Tensor(&g, -1, 0)}), ad::ValueError);
  BOOST_CHECK_THROW((void)ad::group({loss, ad::Tensor(&g, 4096, 0)}), ad::ValueError);
  // An op without outputs cannot be fed.
  const auto op = ad::group({loss});
  BOOST_CHECK_EXCEPTION((void)s.run({loss}, {{op, ad::Array::scalar(1.0)}}),
                        ad::InvalidArgumentError, (MessageHas{{"no outputs"}}));
  // d/dx sum(x^2) = 2x.
  const auto dx = ad::gradients(loss, {x})[0];
  BOOST_TEST(s.eval(dx, {{x, ad::Array::from<double>({1.5, -2.0}, {2})}}).data<double>()[1] ==
             -4.0);
}

BOOST_AUTO_TEST_SUITE_END()
