// Session: pruning, feeds and their checks, plan caching, buffer reuse, errors that leave the
// session usable.
#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "autodiff/internal/storage_stats.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(session_test)

BOOST_AUTO_TEST_CASE(runs_only_what_the_fetches_need) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  auto unused = ad::placeholder(g, ad::DType::Float32, {2}, "unused");
  auto y = x * 2.0;
  auto z = unused + 1.0;  // needs a feed that is not given: must be pruned away
  (void)z;
  ad::Session s(g);
  const auto out = s.eval(y, {{x, ad::Array::from<float>({1.f, 2.f}, {2})}});
  BOOST_TEST(out.data<float>()[1] == 4.f);
}

BOOST_AUTO_TEST_CASE(missing_feed_names_the_placeholder) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 64}, "x");
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(x * 2.0), ad::InvalidArgumentError,
                        (MessageHas{{"must feed", "'x'", "float32[?, 64]"}}));
}

BOOST_AUTO_TEST_CASE(feed_with_wrong_dtype_or_shape_is_rejected) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto y = x * 2.0;
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(y, {{x, ad::Array(ad::DType::Float64, {2, 3})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"'x:0'", "float64[2, 3]", "float32[?, 3]"}}));
  BOOST_CHECK_EXCEPTION(s.eval(y, {{x, ad::Array(ad::DType::Float32, {2, 4})}}),
                        ad::InvalidArgumentError, (MessageHas{{"'x:0'", "[2, 4]", "[?, 3]"}}));
  BOOST_CHECK_EXCEPTION(s.eval(y, {{x, ad::Array(ad::DType::Float32, {3})}}),
                        ad::InvalidArgumentError, (MessageHas{{"[3]", "[?, 3]"}}));
  const auto ok = s.eval(y, {{x, ad::Array::full(ad::DType::Float32, {5, 3}, 1.0)}});
  BOOST_TEST(ok.shape() == ad::Shape({5, 3}));
}

BOOST_AUTO_TEST_CASE(fetches_from_another_graph_are_rejected) {
  ad::Graph g1;
  ad::Graph g2;
  auto c = ad::scalar(g2, 1.0, ad::DType::Float32);
  ad::Session s(g1);
  BOOST_CHECK_EXCEPTION(s.eval(c), ad::InvalidArgumentError, (MessageHas{{"another graph"}}));
}

BOOST_AUTO_TEST_CASE(any_single_output_tensor_can_be_fed) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  auto h = x * 3.0;
  auto y = h + 1.0;
  ad::Session s(g);
  // Feeding h cuts x out of the computation: no feed for x is needed.
  const auto out = s.eval(y, {{h, ad::Array::from<double>({10, 20}, {2})}});
  BOOST_TEST(out.data<double>()[1] == 21.0);
}

BOOST_AUTO_TEST_CASE(placeholder_with_default_uses_default_unless_fed) {
  ad::Graph g;
  auto d = ad::constant(g, ad::Array::from<double>({1, 2}, {2}));
  auto p = ad::placeholder_with_default(d, {2}, "p");
  ad::Session s(g);
  BOOST_TEST(s.eval(p).data<double>()[1] == 2.0);
  BOOST_TEST(s.eval(p, {{p, ad::Array::from<double>({5, 6}, {2})}}).data<double>()[1] == 6.0);
}

BOOST_AUTO_TEST_CASE(steady_state_runs_allocate_no_tensor_memory) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 256}, "x");
  ad::Tensor h = x;
  for (int i = 0; i < 20; ++i) h = ad::tanh(h * 0.5 + 0.1);
  auto grad = ad::gradients(h, {x})[0];
  auto train = ad::group({ad::identity(grad)});  // fetch an op: nothing handed out
  ad::Session s(g);
  const ad::FeedDict feeds{{x, ad::Array::full(ad::DType::Float32, {32, 256}, 0.3)}};
  s.run({train}, feeds);
  s.run({train}, feeds);
  const auto before = s.stats();
  const auto global_before = ad::detail::storage_allocations();
  for (int i = 0; i < 10; ++i) s.run({train}, feeds);
  const auto after = s.stats();
  BOOST_TEST(after.buffer_allocations == before.buffer_allocations);
  BOOST_TEST(after.buffer_reuses > before.buffer_reuses);
  BOOST_TEST(ad::detail::storage_allocations() == global_before);
  BOOST_TEST(after.plans == 1u);
}

BOOST_AUTO_TEST_CASE(buffers_are_reused_by_liveness_within_a_run) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {1024}, "x");
  ad::Tensor h = x;
  for (int i = 0; i < 50; ++i) h = ad::exp(h * 0.0);
  ad::Session s(g);
  const auto out = s.eval(h, {{x, ad::Array(ad::DType::Float64, {1024})}});
  BOOST_TEST(out.data<double>()[7] == 1.0);
  // A chain needs only a couple of live buffers at a time, not one per node.
  BOOST_TEST(s.stats().buffer_allocations <= 4u);
}

BOOST_AUTO_TEST_CASE(fetching_an_op_gives_an_empty_array) {
  ad::Graph g;
  auto op = ad::no_op(g, "nothing");
  ad::Session s(g);
  const auto out = s.run({op});
  BOOST_TEST(out.size() == 1u);
  BOOST_TEST(out[0].empty());
}

BOOST_AUTO_TEST_CASE(check_numerics_option_names_the_first_bad_node) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  auto y = ad::log(x);
  auto z = y * 2.0;
  ad::Session s(g, {.check_numerics = true});
  BOOST_CHECK_EXCEPTION(s.eval(z, {{x, ad::Array::from<float>({1.f, -1.f}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"Log 'Log'", "NaN or Inf", "x:0"}}));
}

BOOST_AUTO_TEST_CASE(memory_limit_is_enforced_with_a_clear_error) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1}, "x");
  auto y = ad::exp(x);
  ad::Session s(g, {.memory_limit_bytes = 1 << 20});
  BOOST_CHECK_EXCEPTION(s.eval(y, {{x, ad::Array(ad::DType::Float32, {1 << 20})}}),
                        ad::ResourceExhaustedError, (MessageHas{{"Exp 'Exp'", "memory limit"}}));
  BOOST_TEST(s.eval(y, {{x, ad::Array(ad::DType::Float32, {16})}}).size() == 16);
}

BOOST_AUTO_TEST_SUITE_END()
