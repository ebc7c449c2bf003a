// Session: planning (pruning, liveness, buffer reuse) and the run loop.
#include "autodiff/session.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "autodiff/graph.h"
#include "autodiff/internal/all_finite.h"
#include "autodiff/internal/executor.h"
#include "autodiff/internal/plan.h"
#include "autodiff/internal/thread_pool.h"
#include "autodiff/kernel.h"
#include "autodiff/variable.h"

namespace ad {

// ---- Runs --------------------------------------------------------------------------------------

namespace {

using detail::Plan;
using detail::Step;

struct RunState {
  detail::RunState run;
  std::vector<const Array*> feed_values;
  BufferPool pool;
};

struct PlanKey {
  std::vector<std::int64_t> words;
  bool operator==(const PlanKey&) const = default;
};
struct PlanKeyHash {
  std::size_t operator()(const PlanKey& key) const {
    std::size_t h = 1469598103934665603ULL;
    for (auto w : key.words) h = (h ^ static_cast<std::size_t>(w)) * 1099511628211ULL;
    return h;
  }
};

}  // namespace

struct Session::Impl {
  Graph& graph;
  SessionOptions options;
  VariableStore variables;
  mutable std::mutex mutex;  // guards plans, free_states and stats
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans;
  std::vector<std::unique_ptr<RunState>> free_states;
  std::uint64_t runs = 0;

  std::shared_ptr<MemoryBudget> budget;  // null without a memory limit

  Impl(Graph& g, SessionOptions o) : graph(g), options(o) {
    if (options.intra_op_parallelism_threads < 0) {
      throw InvalidArgumentError(
          str("Session: intra_op_parallelism_threads must be 0 (the "
              "process default, ad::num_threads()) or positive; got ",
              options.intra_op_parallelism_threads));
    }
    if (options.check_numerics) variables.check_writes(g);
    if (options.memory_limit_bytes != 0) {
      budget = std::make_shared<MemoryBudget>();
      budget->limit = options.memory_limit_bytes;
    }
  }

  Plan& plan_for(const std::vector<Tensor>& fetches, const FeedDict& feeds);
  std::unique_ptr<RunState> acquire_state();
  void release_state(std::unique_ptr<RunState> state);
  void execute(Plan& plan, RunState& state, const FeedDict& feeds, std::vector<Array>& results);
};

namespace {
void check_feed(const Graph& graph, const Tensor& tensor, const Array& value) {
  if (!tensor) throw InvalidArgumentError("Session::run: a feed key is an empty Tensor");
  if (&tensor.graph() != &graph) {
    throw InvalidArgumentError(
        str("Session::run: feed '", tensor.name(), "' belongs to another graph"));
  }
  if (tensor.is_op()) {
    throw InvalidArgumentError(
        str("Session::run: cannot feed '", tensor.name(), "': it has no outputs"));
  }
  if (tensor.op().op->name == "VariableV2") {
    throw InvalidArgumentError(str("Session::run: cannot feed variable handle '", tensor.name(),
                                   "'; feed a read of it, or use Session::set_value"));
  }
  if (value.dtype() != tensor.dtype()) {
    throw InvalidArgumentError(str("Session::run: feed for '", tensor.name(), "' is ",
                                   value.dtype(), value.shape(), " but the tensor is ",
                                   tensor.dtype(), tensor.shape()));
  }
  if (!tensor.shape().is_compatible_with(value.shape())) {
    throw InvalidArgumentError(str("Session::run: feed for '", tensor.name(), "' has shape ",
                                   value.shape(), ", which does not fit ", tensor.shape()));
  }
}
}  // namespace

Plan& Session::Impl::plan_for(const std::vector<Tensor>& fetches, const FeedDict& feeds) {
  thread_local PlanKey key;
  key.words.clear();
  key.words.push_back(static_cast<std::int64_t>(fetches.size()));
  for (const auto& f : fetches) {
    if (!f) throw InvalidArgumentError("Session::run: a fetch is an empty Tensor");
    if (&f.graph() != &graph) {
      throw InvalidArgumentError(
          str("Session::run: fetch '", f.name(), "' belongs to another graph"));
    }
    (void)f.shape();  // checks the node and output exist
    if (const int loop = graph.enclosing_loop(f.op().context); loop != 0) {
      throw InvalidArgumentError(str("Session::run: fetch '", f.name(),
                                     "' lies inside while loop '", graph.context(loop).loop_name,
                                     "'; fetch the loop's outputs instead"));
    }
    key.words.push_back(f.node_index());
    key.words.push_back(f.output_index());
  }
  for (const auto& [tensor, value] : feeds) {
    check_feed(graph, tensor, value);
    key.words.push_back(tensor.node_index());
    key.words.push_back(tensor.output_index());
    key.words.push_back(value.rank());
    for (auto d : value.shape().dims()) key.words.push_back(d);
  }
  {
    const std::lock_guard lock(mutex);
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
  }
  std::vector<Tensor> fed;
  fed.reserve(feeds.size());
  for (const auto& feed : feeds) fed.push_back(feed.first);
  auto plan = detail::make_plan(graph, fetches, fed);
  const std::lock_guard lock(mutex);
  auto [it, inserted] = plans.emplace(key, std::move(plan));
  return *it->second;
}

std::unique_ptr<RunState> Session::Impl::acquire_state() {
  const std::lock_guard lock(mutex);
  ++runs;
  if (!free_states.empty()) {
    auto state = std::move(free_states.back());
    free_states.pop_back();
    return state;
  }
  auto state = std::make_unique<RunState>();
  if (budget) state->pool.set_budget(budget);
  return state;
}

void Session::Impl::release_state(std::unique_ptr<RunState> state) {
  const std::lock_guard lock(mutex);
  free_states.push_back(std::move(state));
}

void Session::Impl::execute(Plan& plan, RunState& state, const FeedDict& feeds,
                            std::vector<Array>& results) {
  state.feed_values.clear();
  for (const auto& feed : feeds) state.feed_values.push_back(&feed.second);
  const detail::RunEnv env{graph, state.pool, variables, options.check_numerics};
  detail::execute(env, plan, state.run, state.feed_values, results);
}

Session::Session(Graph& graph, SessionOptions options)
    : impl_(std::make_unique<Impl>(graph, options)) {}
Session::~Session() = default;

std::vector<Array> Session::run(const std::vector<Tensor>& fetches, const FeedDict& feeds) {
  const detail::ThreadCountOverride threads(impl_->options.intra_op_parallelism_threads);
  Plan& plan = impl_->plan_for(fetches, feeds);
  auto state = impl_->acquire_state();
  std::vector<Array> results;
  try {
    impl_->execute(plan, *state, feeds, results);
  } catch (...) {
    impl_->release_state(std::move(state));
    throw;
  }
  impl_->release_state(std::move(state));
  return results;
}

Array Session::eval(const Tensor& fetch, const FeedDict& feeds) {
  return std::move(run(std::vector<Tensor>{fetch}, feeds).front());
}

namespace {
const VariableDef& checked_variable(const Graph& graph, const Variable& variable) {
  if (&variable.graph() != &graph) {
    throw ValueError(str("Session: variable '", variable.name(), "' belongs to another graph"));
  }
  return graph.variable(variable.id());
}
}  // namespace

bool Session::is_initialized(const Variable& variable) const {
  checked_variable(impl_->graph, variable);
  return impl_->variables.initialized(variable.id());
}

Array Session::value(const Variable& variable) const {
  checked_variable(impl_->graph, variable);
  return impl_->variables.read(impl_->graph, variable.id());
}

void Session::set_value(const Variable& variable, const Array& value) {
  const auto& def = checked_variable(impl_->graph, variable);
  if (value.dtype() != def.dtype || !(value.shape() == def.shape)) {
    throw ValueError(str("Session::set_value: '", def.name, "' is ", def.dtype, def.shape,
                         " but the value is ", value.dtype(), value.shape()));
  }
  impl_->variables.write(variable.id(), value);
}

std::uint64_t Session::run_count(const Tensor& op) const {
  if (!op) throw ValueError("Session::run_count: the op is an empty Tensor");
  if (&op.graph() != &impl_->graph) {
    throw ValueError(str("Session::run_count: '", op.name(), "' belongs to another graph"));
  }
  (void)op.op();  // checks the node exists
  const std::lock_guard lock(impl_->mutex);
  std::uint64_t total = 0;
  for (const auto& [key, plan] : impl_->plans) {
    for (std::size_t s = 0; s < plan->steps.size(); ++s) {
      if (plan->steps[s].node == &impl_->graph.node(op.node_index())) {
        total += plan->counts[s].load(std::memory_order_relaxed);
      }
    }
  }
  return total;
}

Graph& Session::graph() const { return impl_->graph; }

SessionStats Session::stats() const {
  const std::lock_guard lock(impl_->mutex);
  SessionStats s;
  s.runs = impl_->runs;
  s.plans = impl_->plans.size();
  for (const auto& state : impl_->free_states) {
    s.buffer_allocations += state->pool.allocations();
    s.buffer_reuses += state->pool.reuses();
    s.buffer_bytes += state->pool.bytes_allocated();
  }
  return s;
}

}  // namespace ad
