// Plans: what a Session (or a while loop's body) runs for one set of fetches and feeds. Building a
// plan is a chain of small steps, each a free function tested on its own (tests/autodiff/
// plan_test.cpp): prune the tape to what the fetches need, give each output a slot, list the
// steps with their input slots, find each slot's last reader (liveness) and release it there.
// For the Session and control flow; not part of the public API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gradtape/autodiff/graph.h"

namespace ad::detail {

struct Step {
  const Node* node;
  int input_begin;    // into Plan::input_slots
  int output_base;    // slot of output 0
  int release_begin;  // into Plan::releases
  int release_end;
  int context;
};

struct Plan {
  std::vector<Step> steps;
  std::vector<int> input_slots;
  std::vector<int> releases;
  std::vector<int> fetch_slots;  // -1 for an op without outputs
  std::vector<int> fetch_nodes;
  std::vector<int> feed_slots;         // per feed; -1 when fed but not needed
  std::vector<int> context_pred_slot;  // by graph context id; -1 when unused
  int num_slots = 0;
  bool has_contexts = false;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts;  // runs per step
};

// One flag per node: 1 for the fed nodes. Throws InvalidArgumentError for a node fed twice or a
// node with several outputs (only single-output tensors can be fed).
[[nodiscard]] std::vector<char> mark_fed(const Graph& graph, std::span<const Tensor> feeds);

// One flag per node: 1 for the nodes the fetches need, walking back from the fetches over data
// inputs, control inputs and the predicates of enclosing cond branches. A fed node is needed
// (it holds a value) but its own inputs are not.
[[nodiscard]] std::vector<char> prune(const Graph& graph, std::span<const Tensor> fetches,
                                      std::span<const char> fed);

// The slot of output 0 of each needed node (-1 for the others), in recording order; the slots of a
// node's outputs are consecutive. `num_slots` receives the total.
[[nodiscard]] std::vector<int> assign_slots(const Graph& graph, std::span<const char> needed,
                                            int& num_slots);

// Fills plan.steps, plan.input_slots and plan.context_pred_slot: one step per needed node that is
// not fed, in recording order. Throws InvalidArgumentError for a needed placeholder not fed.
void list_steps(const Graph& graph, std::span<const char> needed, std::span<const char> fed,
                std::span<const int> slot_of, Plan& plan);

// Fills plan.fetch_slots and plan.fetch_nodes.
void list_fetches(std::span<const Tensor> fetches, std::span<const int> slot_of, Plan& plan);

// Liveness: for each slot, the index of the last step reading it (an input or a cond predicate),
// steps.size() for a fetched slot (kept to the end), -1 when nothing reads it.
[[nodiscard]] std::vector<int> last_uses(const Graph& graph, const Plan& plan);

// Fills plan.releases and each step's release range: a step's own outputs are released after
// their last reader (right after the step itself when unread), a fed slot after its last reader;
// fetched slots are never released.
void list_releases(std::span<const int> last_use, Plan& plan);

// The whole chain: the plan for `fetches` given values for `feeds`.
[[nodiscard]] std::unique_ptr<Plan> make_plan(const Graph& graph, std::span<const Tensor> fetches,
                                              std::span<const Tensor> feeds);

}  // namespace ad::detail
