// Plan building, step by step (autodiff/plan.h): pruning, slots, steps, liveness and release
// lists, each against a plan worked out by hand for a small graph.
#include "autodiff/internal/plan.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

// x (node 0), y (node 1): placeholders; a = x + y (2); b = a * 2 (const 3, mul 4);
// unused = y - 1 (const 5, sub 6).
struct Small {
  ad::Graph g;
  ad::Tensor x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  ad::Tensor y = ad::placeholder(g, ad::DType::Float64, {2}, "y");
  ad::Tensor a = x + y;
  ad::Tensor b = a * 2.0;
  ad::Tensor unused = y - 1.0;
};

std::vector<char> flags(std::initializer_list<int> v) { return {v.begin(), v.end()}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(plan_test)

BOOST_AUTO_TEST_CASE(the_small_graph_has_the_node_numbers_the_tests_assume) {
  Small s;
  BOOST_TEST(s.g.num_nodes() == 7);
  BOOST_TEST(s.a.node_index() == 2);
  BOOST_TEST(s.b.node_index() == 4);
  BOOST_TEST(s.unused.node_index() == 6);
}

BOOST_AUTO_TEST_CASE(prune_keeps_what_the_fetches_need) {
  Small s;
  const auto nothing_fed = flags({0, 0, 0, 0, 0, 0, 0});
  const ad::Tensor fetch_b[] = {s.b};
  BOOST_TEST(ad::detail::prune(s.g, fetch_b, nothing_fed) == flags({1, 1, 1, 1, 1, 0, 0}));
  // Feeding a cuts x and y off.
  const auto a_fed = flags({0, 0, 1, 0, 0, 0, 0});
  BOOST_TEST(ad::detail::prune(s.g, fetch_b, a_fed) == flags({0, 0, 1, 1, 1, 0, 0}));
  const ad::Tensor fetch_unused[] = {s.unused};
  BOOST_TEST(ad::detail::prune(s.g, fetch_unused, nothing_fed) == flags({0, 1, 0, 0, 0, 1, 1}));
}

BOOST_AUTO_TEST_CASE(prune_follows_control_inputs_and_cond_predicates) {
  ad::Graph g;
  auto p = ad::placeholder(g, ad::DType::Bool, {}, "p");     // 0
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");  // 1
  auto side = x * 3.0;                                       // 2, 3
  ad::Tensor after;
  {
    const ad::ControlDependencies deps({side});
    after = ad::identity(x);  // 4
  }
  auto c = ad::cond(
      p, [&] { return after + 1.0; }, [&] { return after; });
  const ad::Tensor fetch_after[] = {after};
  std::vector<char> none(static_cast<std::size_t>(g.num_nodes()), 0);
  auto needed_after = ad::detail::prune(g, fetch_after, none);
  // Nodes 5 on belong to the cond, recorded later: none is needed.
  BOOST_TEST(std::count(needed_after.begin() + 5, needed_after.end(), 1) == 0);
  needed_after.resize(5);
  BOOST_TEST(needed_after == flags({0, 1, 1, 1, 1}), boost::test_tools::per_element());
  const ad::Tensor fetch_c[] = {c};
  none.assign(static_cast<std::size_t>(g.num_nodes()), 0);
  const auto needed = ad::detail::prune(g, fetch_c, none);
  BOOST_TEST(needed[0] == 1);  // the predicate, read by no data edge
}

BOOST_AUTO_TEST_CASE(slots_are_consecutive_per_node_in_recording_order) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {4}, "x");  // 0: slot 0
  const auto stats = ad::moments(x, {0});  // several nodes, some with several outputs
  (void)stats;
  int num_slots = -1;
  std::vector<char> needed(static_cast<std::size_t>(g.num_nodes()), 1);
  const auto slot_of = ad::detail::assign_slots(g, needed, num_slots);
  int expected = 0;
  for (int i = 0; i < g.num_nodes(); ++i) {
    BOOST_TEST(slot_of[static_cast<std::size_t>(i)] == expected);
    expected += static_cast<int>(g.node(i).outputs.size());
  }
  BOOST_TEST(num_slots == expected);
  needed.assign(needed.size(), 0);
  needed[0] = 1;
  const auto only_x = ad::detail::assign_slots(g, needed, num_slots);
  BOOST_TEST(num_slots == 1);
  BOOST_TEST(only_x[1] == -1);
}

BOOST_AUTO_TEST_CASE(make_plan_matches_the_hand_worked_plan) {
  Small s;
  // Fetch b and a, feed x and y. Needed: 0..4; slots: x 0, y 1, a 2, const 3, b 4.
  // Steps: a (inputs 0, 1), const (none), b (inputs 2, 3).
  // Liveness: x, y last read by step 0; a fetched; const last read by step 2; b fetched.
  // Releases: step 0 releases the feeds x and y; step 2 releases the constant.
  const ad::Tensor fetches[] = {s.b, s.a};
  const ad::Tensor feeds[] = {s.x, s.y};
  const auto plan = ad::detail::make_plan(s.g, fetches, feeds);
  BOOST_TEST(plan->num_slots == 5);
  BOOST_TEST(plan->steps.size() == 3U);
  BOOST_TEST(plan->steps[0].node == &s.g.node(2));
  BOOST_TEST(plan->steps[1].node == &s.g.node(3));
  BOOST_TEST(plan->steps[2].node == &s.g.node(4));
  BOOST_TEST(plan->input_slots == (std::vector<int>{0, 1, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(plan->steps[2].input_begin == 2);
  BOOST_TEST(plan->fetch_slots == (std::vector<int>{4, 2}), boost::test_tools::per_element());
  BOOST_TEST(plan->feed_slots == (std::vector<int>{0, 1}), boost::test_tools::per_element());
  const auto last_use = ad::detail::last_uses(s.g, *plan);
  BOOST_TEST(last_use == (std::vector<int>{0, 0, 3, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(plan->releases == (std::vector<int>{0, 1, 3}), boost::test_tools::per_element());
  BOOST_TEST(plan->steps[0].release_begin == 0);
  BOOST_TEST(plan->steps[0].release_end == 2);
  BOOST_TEST(plan->steps[1].release_end - plan->steps[1].release_begin == 0);
  BOOST_TEST(plan->steps[2].release_begin == 2);
  BOOST_TEST(plan->steps[2].release_end == 3);
}

BOOST_AUTO_TEST_CASE(an_unread_output_is_released_by_its_producer) {
  Small s;
  // Fetch only the op that groups b: b's value is produced but read by nobody (the group has only
  // a control edge to it), so step b releases it at once, with a and the constant it read last.
  const auto op = ad::group({s.b});
  const ad::Tensor fetches[] = {op};
  const ad::Tensor feeds[] = {s.x, s.y};
  const auto plan = ad::detail::make_plan(s.g, fetches, feeds);
  BOOST_TEST(plan->steps.size() == 4U);  // a, const, b, group
  BOOST_TEST(plan->fetch_slots == (std::vector<int>{-1}), boost::test_tools::per_element());
  const auto& b_step = plan->steps[2];
  BOOST_TEST(b_step.release_end - b_step.release_begin == 3);  // a, the constant, b itself
  BOOST_TEST(plan->releases[static_cast<std::size_t>(b_step.release_end - 1)] ==
             b_step.output_base);
}

BOOST_AUTO_TEST_CASE(a_feed_not_needed_gets_no_slot) {
  Small s;
  const ad::Tensor fetches[] = {s.unused};
  const ad::Tensor feeds[] = {s.x, s.y};
  const auto plan = ad::detail::make_plan(s.g, fetches, feeds);
  BOOST_TEST(plan->feed_slots == (std::vector<int>{-1, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(feed_errors_come_from_mark_fed) {
  Small s;
  const ad::Tensor twice[] = {s.x, s.x};
  BOOST_CHECK_EXCEPTION((void)ad::detail::mark_fed(s.g, twice), ad::InvalidArgumentError,
                        (MessageHas{{"'x:0'", "fed twice"}}));
  const ad::Tensor fetches[] = {s.b};
  BOOST_CHECK_EXCEPTION((void)ad::detail::make_plan(s.g, fetches, {}), ad::InvalidArgumentError,
                        (MessageHas{{"must feed", "'x'"}}));
}

BOOST_AUTO_TEST_SUITE_END()
