// Plan building as a chain of small steps: mark feeds, prune, assign slots, list steps and
// fetches, liveness, release lists.
#include "autodiff/internal/plan.h"

#include <algorithm>

#include "autodiff/error.h"
#include "autodiff/ops/basic.h"

namespace ad::detail {

namespace {
std::size_t at(int i) { return static_cast<std::size_t>(i); }
}  // namespace

std::vector<char> mark_fed(const Graph& graph, std::span<const Tensor> feeds) {
  std::vector<char> fed(at(graph.num_nodes()), 0);
  for (const auto& tensor : feeds) {
    const auto& node = graph.node(tensor.node_index());
    if (node.outputs.size() != 1) {
      throw InvalidArgumentError(str("Session::run: cannot feed '", tensor.name(),
                                     "': only single-output tensors can be fed"));
    }
    if (fed[at(tensor.node_index())]) {
      throw InvalidArgumentError(str("Session::run: '", tensor.name(), "' is fed twice"));
    }
    fed[at(tensor.node_index())] = 1;
  }
  return fed;
}

std::vector<char> prune(const Graph& graph, std::span<const Tensor> fetches,
                        std::span<const char> fed) {
  std::vector<char> needed(at(graph.num_nodes()), 0);
  int highest = -1;
  for (const auto& f : fetches) {
    needed[at(f.node_index())] = 1;
    highest = std::max(highest, f.node_index());
  }
  // Recording order is topological: one backward pass sees every consumer before its producers.
  for (int i = highest; i >= 0; --i) {
    if (!needed[at(i)] || fed[at(i)]) continue;
    const Node& node = graph.node(i);
    for (const auto& in : node.inputs) needed[at(in.node)] = 1;
    for (int c : node.control_inputs) needed[at(c)] = 1;
    for (int c = node.context; graph.is_cond_context(c); c = graph.context(c).parent) {
      needed[at(graph.context(c).pred.node)] = 1;
    }
  }
  return needed;
}

std::vector<int> assign_slots(const Graph& graph, std::span<const char> needed, int& num_slots) {
  std::vector<int> slot_of(needed.size(), -1);
  num_slots = 0;
  for (std::size_t i = 0; i < needed.size(); ++i) {
    if (!needed[i]) continue;
    slot_of[i] = num_slots;
    num_slots += static_cast<int>(graph.node(static_cast<int>(i)).outputs.size());
  }
  return slot_of;
}

void list_steps(const Graph& graph, std::span<const char> needed, std::span<const char> fed,
                std::span<const int> slot_of, Plan& plan) {
  plan.context_pred_slot.assign(at(graph.num_contexts()), -1);
  for (std::size_t i = 0; i < needed.size(); ++i) {
    if (!needed[i] || fed[i]) continue;
    const Node& node = graph.node(static_cast<int>(i));
    if (node.op == &kPlaceholderOp) {
      throw InvalidArgumentError(str("Session::run: you must feed a value for placeholder '",
                                     node.name, "' (", node.outputs[0].dtype, node.outputs[0].shape,
                                     ")"));
    }
    plan.steps.push_back(
        Step{&node, static_cast<int>(plan.input_slots.size()), slot_of[i], 0, 0, node.context});
    for (const auto& in : node.inputs) plan.input_slots.push_back(slot_of[at(in.node)] + in.index);
    if (node.context != 0) plan.has_contexts = true;
    for (int c = node.context; graph.is_cond_context(c); c = graph.context(c).parent) {
      const auto& pred = graph.context(c).pred;
      plan.context_pred_slot[at(c)] = slot_of[at(pred.node)] + pred.index;
    }
  }
}

void list_fetches(std::span<const Tensor> fetches, std::span<const int> slot_of, Plan& plan) {
  for (const auto& f : fetches) {
    plan.fetch_slots.push_back(f.is_op() ? -1 : slot_of[at(f.node_index())] + f.output_index());
    plan.fetch_nodes.push_back(f.node_index());
  }
}

std::vector<int> last_uses(const Graph& graph, const Plan& plan) {
  std::vector<int> last_use(at(plan.num_slots), -1);
  for (std::size_t s = 0; s < plan.steps.size(); ++s) {
    const Step& step = plan.steps[s];
    const auto num_inputs = static_cast<int>(step.node->inputs.size());
    for (int k = 0; k < num_inputs; ++k) {
      last_use[at(plan.input_slots[at(step.input_begin + k)])] = static_cast<int>(s);
    }
    for (int c = step.context; graph.is_cond_context(c); c = graph.context(c).parent) {
      last_use[at(plan.context_pred_slot[at(c)])] = static_cast<int>(s);
    }
  }
  for (int slot : plan.fetch_slots) {
    if (slot >= 0) last_use[at(slot)] = static_cast<int>(plan.steps.size());
  }
  return last_use;
}

void list_releases(std::span<const int> last_use, Plan& plan) {
  const auto end = static_cast<int>(plan.steps.size());
  std::vector<std::vector<int>> release_at(plan.steps.size());
  for (std::size_t s = 0; s < plan.steps.size(); ++s) {
    const Step& step = plan.steps[s];
    const int outputs = static_cast<int>(step.node->outputs.size());
    for (int k = 0; k < outputs; ++k) {
      const int slot = step.output_base + k;
      const int last = last_use[at(slot)];
      if (last == end) continue;  // fetched: kept to the end
      release_at[at(std::max(last, static_cast<int>(s)))].push_back(slot);
    }
  }
  for (int slot : plan.feed_slots) {
    if (slot < 0) continue;
    const int last = last_use[at(slot)];
    if (last >= 0 && last < end) release_at[at(last)].push_back(slot);
  }
  for (std::size_t s = 0; s < plan.steps.size(); ++s) {
    plan.steps[s].release_begin = static_cast<int>(plan.releases.size());
    plan.releases.insert(plan.releases.end(), release_at[s].begin(), release_at[s].end());
    plan.steps[s].release_end = static_cast<int>(plan.releases.size());
  }
}

std::unique_ptr<Plan> make_plan(const Graph& graph, std::span<const Tensor> fetches,
                                std::span<const Tensor> feeds) {
  const auto fed = mark_fed(graph, feeds);
  const auto needed = prune(graph, fetches, fed);
  auto plan = std::make_unique<Plan>();
  const auto slot_of = assign_slots(graph, needed, plan->num_slots);
  for (const auto& tensor : feeds) plan->feed_slots.push_back(slot_of[at(tensor.node_index())]);
  list_steps(graph, needed, fed, slot_of, *plan);
  list_fetches(fetches, slot_of, *plan);
  list_releases(last_uses(graph, *plan), *plan);
  plan->counts = std::make_unique<std::atomic<std::uint64_t>[]>(plan->steps.size());
  return plan;
}

}  // namespace ad::detail
