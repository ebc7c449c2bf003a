// The run loop over a plan's steps, shared by Session::run and the While kernel.
#include "autodiff/internal/executor.h"

#include <string>
#include <string_view>

#include "autodiff/check_numerics.h"
#include "autodiff/error.h"
#include "autodiff/internal/all_finite.h"
#include "autodiff/kernel.h"

namespace ad::detail {

namespace {

// Whether cond context `context` is taken in this run (its predicate computed and equal to its
// branch, and its parent taken), computed once per run.
bool context_active(const Graph& graph, const Plan& plan, RunState& state, int context) {
  auto& active = state.context_active[static_cast<std::size_t>(context)];
  if (active < 0) {
    const auto& ctx = graph.context(context);
    // A loop context is active throughout its loop's own plan, the only one that runs its nodes.
    bool on = ctx.loop || ctx.parent == 0 || context_active(graph, plan, state, ctx.parent);
    if (on && !ctx.loop) {
      const int slot = plan.context_pred_slot[static_cast<std::size_t>(context)];
      on = state.produced[static_cast<std::size_t>(slot)] &&
           state.slots[static_cast<std::size_t>(slot)].data<bool>()[0] == ctx.branch;
    }
    active = on ? 1 : 0;
  }
  return active == 1;
}

void check_numerics(const Graph& graph, const Node& node, const Array* outputs, int count) {
  for (int k = 0; k < count; ++k) {
    const Array& a = outputs[k];
    if (is_floating(a.dtype()) && !detail::all_finite(a)) {
      std::string inputs;
      for (const auto& in : node.inputs) {
        inputs += (inputs.empty() ? "" : ", ") + graph.node(in.node).name + ":" +
                  std::to_string(in.index);
      }
      throw InvalidArgumentError(str("check_numerics: ", node.op->name, " '", node.name,
                                     "' produced NaN or Inf in output ", k, " ", a.dtype(),
                                     a.shape(), " (inputs: ", inputs, ")"));
    }
  }
}

// Rethrows `e`, of its own type, with "<Op> '<node>': " in front unless it names the node already
// (an Array allocated inside a kernel fails with "Array: out of memory ...", which does not).
[[noreturn]] void rethrow_naming(const Node& node, const Error& e) {
  const std::string_view what = e.what();
  if (what.find(str("'", node.name, "'")) != std::string_view::npos) throw;
  const std::string message = str(node.op->name, " '", node.name, "': ", what);
  if (dynamic_cast<const ResourceExhaustedError*>(&e)) throw ResourceExhaustedError(message);
  if (dynamic_cast<const InvalidArgumentError*>(&e)) throw InvalidArgumentError(message);
  if (dynamic_cast<const FailedPreconditionError*>(&e)) throw FailedPreconditionError(message);
  if (dynamic_cast<const OutOfRangeError*>(&e)) throw OutOfRangeError(message);
  if (dynamic_cast<const NotFoundError*>(&e)) throw NotFoundError(message);
  if (dynamic_cast<const DataLossError*>(&e)) throw DataLossError(message);
  if (dynamic_cast<const InternalError*>(&e)) throw InternalError(message);
  throw;
}

// Runs one kernel; every failure becomes an ad::Error naming the node.
void run_kernel(const Node& node, KernelContext& ctx) {
  try {
    node.op->kernel(ctx);
  } catch (const ValueError& e) {
    // A value computed at run time is wrong (a fed shape whose element count overflows, ...):
    // InvalidArgumentError, naming the node, as for every other run-time value.
    throw InvalidArgumentError(str(node.op->name, " '", node.name, "': ", e.what()));
  } catch (const Error& e) {
    rethrow_naming(node, e);
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(node.op->name, " '", node.name, "': out of memory"));
  } catch (const std::exception& e) {
    throw InternalError(str(node.op->name, " '", node.name, "': ", e.what()));
  }
}

// The fetched values, sharing storage with the slots (whose references are dropped at cleanup).
void collect_results(const Graph& graph, const Plan& plan, const RunState& state,
                     std::vector<Array>& results) {
  results.clear();
  results.reserve(plan.fetch_slots.size());
  for (std::size_t f = 0; f < plan.fetch_slots.size(); ++f) {
    const int slot = plan.fetch_slots[f];
    if (slot < 0) {
      results.emplace_back();
      continue;
    }
    if (!state.produced[static_cast<std::size_t>(slot)]) {
      throw InvalidArgumentError(
          str("Session::run: fetch '", graph.node(plan.fetch_nodes[f]).name,
              "' was not computed: it lies in a cond branch that was not taken"));
    }
    results.push_back(state.slots[static_cast<std::size_t>(slot)]);
  }
}

}  // namespace

void execute(const RunEnv& env, Plan& plan, RunState& state, std::span<const Array* const> feeds,
             std::vector<Array>& results) {
  const Graph& graph = env.graph;
  state.slots.resize(static_cast<std::size_t>(plan.num_slots));
  state.produced.assign(static_cast<std::size_t>(plan.num_slots), 0);
  if (plan.has_contexts)
    state.context_active.assign(static_cast<std::size_t>(graph.num_contexts()), -1);
  struct Cleanup {
    RunState& state;
    BufferPool& pool;
    ~Cleanup() {
      for (auto& slot : state.slots) pool.recycle(slot);
    }
  } cleanup{state, env.pool};
  for (std::size_t f = 0; f < feeds.size(); ++f) {
    const int slot = plan.feed_slots[f];
    if (slot < 0 || feeds[f] == nullptr) continue;
    state.slots[static_cast<std::size_t>(slot)] = *feeds[f];
    state.produced[static_cast<std::size_t>(slot)] = 1;
  }
  Array* slots = state.slots.data();
  for (std::size_t s = 0; s < plan.steps.size(); ++s) {
    const Step& step = plan.steps[s];
    if (step.context != 0 && !context_active(graph, plan, state, step.context)) continue;
    const Node& node = *step.node;
    KernelContext ctx(graph, node, slots, state.produced.data(),
                      plan.input_slots.data() + step.input_begin, step.output_base, env.pool,
                      env.variables, &env);
    if (plan.has_contexts && !node.op->accepts_missing_inputs) {
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        if (!ctx.has_input(i)) {
          throw InternalError(
              str(node.op->name, " '", node.name, "': input ", i, " was not computed"));
        }
      }
    }
    run_kernel(node, ctx);
    plan.counts[s].fetch_add(1, std::memory_order_relaxed);
    if (env.check_numerics) {
      check_numerics(graph, node, slots + step.output_base, static_cast<int>(node.outputs.size()));
    }
    for (int r = step.release_begin; r < step.release_end; ++r) {
      env.pool.recycle(slots[plan.releases[static_cast<std::size_t>(r)]]);
    }
  }
  collect_results(graph, plan, state, results);
}

}  // namespace ad::detail
