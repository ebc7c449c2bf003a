// Session: planning (pruning, liveness, buffer reuse) and the run loop.
#include "autodiff/session.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "autodiff/graph.h"
#include "autodiff/internal/all_finite.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/variable.h"

namespace ad {

// ---- BufferPool, VariableStore, KernelContext ---------------------------------------------------

namespace {
constexpr std::size_t kBucket = 64;
std::size_t bucket_of(std::size_t bytes) { return (bytes + kBucket - 1) / kBucket * kBucket; }
}  // namespace

std::vector<std::shared_ptr<detail::Storage>>& BufferPool::free_blocks(std::size_t bytes) {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), bytes,
                             [](const Bucket& b, std::size_t n) { return b.bytes < n; });
  if (it == buckets_.end() || it->bytes != bytes) it = buckets_.insert(it, Bucket{bytes, {}});
  return it->free;
}

std::shared_ptr<detail::Storage> BufferPool::acquire(std::size_t bytes) {
  const std::size_t key = bucket_of(bytes);
  auto& free = free_blocks(key);
  if (!free.empty()) {
    auto storage = std::move(free.back());
    free.pop_back();
    ++reuses_;
    return storage;
  }
  if (limit_ != 0 && bytes_allocated_ + key > limit_) {
    throw ResourceExhaustedError(str("session memory limit of ", limit_,
                                     " bytes would be exceeded by ", key, " more bytes (",
                                     bytes_allocated_, " already held)"));
  }
  ++allocations_;
  bytes_allocated_ += key;
  return std::make_shared<detail::Storage>(key);
}

void BufferPool::recycle(Array& array) {
  auto storage = array.release_storage();
  // Already released (the end of a run sweeps every slot again) or without elements, so already
  // empty(): nothing to take, and resetting it would cost more than the rest of this function.
  if (!storage) return;
  // A block someone else still holds (a fetch result, a variable) leaves the pool's accounting;
  // blocks that leave are replaced on demand.
  if (storage.use_count() == 1) {
    // Another thread may have just dropped the last other reference (a fetched result): order its
    // reads before this pool's next writes (use_count() is a relaxed load; see raw_mutable_data).
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::size_t key = storage->capacity;
    free_blocks(key).push_back(std::move(storage));
  }
  array = Array();
}

Array VariableStore::read(const Graph& graph, int id) const {
  const std::lock_guard lock(mutex_);
  if (static_cast<std::size_t>(id) >= initialized_.size() ||
      !initialized_[static_cast<std::size_t>(id)]) {
    const auto& def = graph.variable(id);
    throw FailedPreconditionError(
        str("attempting to use uninitialized variable '", def.name, "' (", def.dtype, def.shape,
            "); run its initializer or ad::global_variables_initializer first"));
  }
  return values_[static_cast<std::size_t>(id)];
}

bool VariableStore::initialized(int id) const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(id) < initialized_.size() &&
         initialized_[static_cast<std::size_t>(id)];
}

void VariableStore::write(int id, Array value) {
  const std::lock_guard lock(mutex_);
  const auto i = static_cast<std::size_t>(id);
  if (i >= values_.size()) {
    values_.resize(i + 1);
    initialized_.resize(i + 1, 0);
  }
  values_[i] = std::move(value);
  initialized_[i] = 1;
}

std::uint64_t VariableStore::next_counter(const Node* node) {
  const std::lock_guard lock(mutex_);
  return counters_[node]++;
}

Array& VariableStore::slot(const Graph& graph, int id) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= initialized_.size() || !initialized_[i]) {
    const auto& def = graph.variable(id);
    throw FailedPreconditionError(str("attempting to update uninitialized variable '", def.name,
                                      "' (", def.dtype, def.shape, ")"));
  }
  return values_[i];
}

Array& KernelContext::allocate_output(int i, const Shape& shape) {
  const auto& spec = node_.outputs[static_cast<std::size_t>(i)];
  if (!spec.shape.is_compatible_with(shape)) {
    throw InternalError(str(node_.op->name, " '", node_.name, "': output ", i, " has shape ", shape,
                            " but the graph promised ", spec.shape));
  }
  const std::int64_t n = shape.num_elements();
  const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(spec.dtype);
  Array& slot = slots_[output_base_ + i];
  try {
    slot = Array(spec.dtype, shape, bytes == 0 ? nullptr : pool_.acquire(bytes));
  } catch (const ResourceExhaustedError& e) {
    throw ResourceExhaustedError(
        str(node_.op->name, " '", node_.name, "': output ", spec.dtype, shape, ": ", e.what()));
  }
  produced_[output_base_ + i] = 1;
  return slot;
}

void KernelContext::set_output(int i, Array value) {
  const auto& spec = node_.outputs[static_cast<std::size_t>(i)];
  if (value.dtype() != spec.dtype || !spec.shape.is_compatible_with(value.shape())) {
    throw InternalError(str(node_.op->name, " '", node_.name, "': output ", i, " is ",
                            value.dtype(), value.shape(), " but the graph promised ", spec.dtype,
                            spec.shape));
  }
  slots_[output_base_ + i] = std::move(value);
  produced_[output_base_ + i] = 1;
}

void KernelContext::fail(std::string_view what) const {
  throw InvalidArgumentError(str(node_.op->name, " '", node_.name, "': ", what));
}

// ---- Plans --------------------------------------------------------------------------------------

namespace {

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
  std::vector<int> feed_slots;
  std::vector<int> context_pred_slot;  // by graph context id; -1 when unused
  int num_slots = 0;
  bool has_contexts = false;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts;
};

struct RunState {
  std::vector<Array> slots;
  std::vector<char> produced;
  std::vector<signed char> context_active;  // -1 unknown, 0 inactive, 1 active
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

  Impl(Graph& g, SessionOptions o) : graph(g), options(o) {}

  Plan& plan_for(const std::vector<Tensor>& fetches, const FeedDict& feeds);
  std::unique_ptr<Plan> make_plan(const std::vector<Tensor>& fetches, const FeedDict& feeds);
  std::unique_ptr<RunState> acquire_state();
  void release_state(std::unique_ptr<RunState> state);
  void execute(Plan& plan, RunState& state, const FeedDict& feeds, std::vector<Array>& results);
  bool context_active(const Plan& plan, RunState& state, int context);
  void check_numerics(const Node& node, const Array* outputs, int count);
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
  auto plan = make_plan(fetches, feeds);
  const std::lock_guard lock(mutex);
  auto [it, inserted] = plans.emplace(key, std::move(plan));
  return *it->second;
}

std::unique_ptr<Plan> Session::Impl::make_plan(const std::vector<Tensor>& fetches,
                                               const FeedDict& feeds) {
  const int n = graph.num_nodes();
  std::vector<char> fed(static_cast<std::size_t>(n), 0);
  for (const auto& [tensor, value] : feeds) {
    const auto& node = graph.node(tensor.node_index());
    if (node.outputs.size() != 1) {
      throw InvalidArgumentError(str("Session::run: cannot feed '", tensor.name(),
                                     "': only single-output tensors can be fed"));
    }
    if (fed[static_cast<std::size_t>(tensor.node_index())]) {
      throw InvalidArgumentError(str("Session::run: '", tensor.name(), "' is fed twice"));
    }
    fed[static_cast<std::size_t>(tensor.node_index())] = 1;
  }
  // Prune: walk backwards from the fetches over data inputs, control inputs and cond predicates.
  std::vector<char> needed(static_cast<std::size_t>(n), 0);
  int highest = -1;
  for (const auto& f : fetches) {
    needed[static_cast<std::size_t>(f.node_index())] = 1;
    highest = std::max(highest, f.node_index());
  }
  for (int i = highest; i >= 0; --i) {
    if (!needed[static_cast<std::size_t>(i)] || fed[static_cast<std::size_t>(i)]) continue;
    const Node& node = graph.node(i);
    for (const auto& in : node.inputs) needed[static_cast<std::size_t>(in.node)] = 1;
    for (int c : node.control_inputs) needed[static_cast<std::size_t>(c)] = 1;
    for (int c = node.context; c != 0; c = graph.context(c).parent) {
      needed[static_cast<std::size_t>(graph.context(c).pred.node)] = 1;
    }
  }
  auto plan = std::make_unique<Plan>();
  std::vector<int> slot_of(static_cast<std::size_t>(n), -1);  // slot of output 0 per node
  for (int i = 0; i <= highest; ++i) {
    if (!needed[static_cast<std::size_t>(i)]) continue;
    slot_of[static_cast<std::size_t>(i)] = plan->num_slots;
    plan->num_slots += static_cast<int>(graph.node(i).outputs.size());
  }
  for (const auto& [tensor, value] : feeds) {
    const int slot = slot_of[static_cast<std::size_t>(tensor.node_index())];
    plan->feed_slots.push_back(slot);  // -1: fed but not needed
  }
  // Steps and liveness: the last step that reads each slot.
  std::vector<int> last_use(static_cast<std::size_t>(plan->num_slots), -1);
  plan->context_pred_slot.assign(static_cast<std::size_t>(graph.num_contexts()), -1);
  for (int i = 0; i <= highest; ++i) {
    if (!needed[static_cast<std::size_t>(i)]) continue;
    const Node& node = graph.node(i);
    if (fed[static_cast<std::size_t>(i)]) continue;
    if (node.op == &detail::kPlaceholderOp) {
      throw InvalidArgumentError(str("Session::run: you must feed a value for placeholder '",
                                     node.name, "' (", node.outputs[0].dtype, node.outputs[0].shape,
                                     ")"));
    }
    const int step_index = static_cast<int>(plan->steps.size());
    Step step{&node,
              static_cast<int>(plan->input_slots.size()),
              slot_of[static_cast<std::size_t>(i)],
              0,
              0,
              node.context};
    for (const auto& in : node.inputs) {
      const int slot = slot_of[static_cast<std::size_t>(in.node)] + in.index;
      plan->input_slots.push_back(slot);
      last_use[static_cast<std::size_t>(slot)] = step_index;
    }
    for (int c = node.context; c != 0; c = graph.context(c).parent) {
      const auto& ctx = graph.context(c);
      const int slot = slot_of[static_cast<std::size_t>(ctx.pred.node)] + ctx.pred.index;
      plan->context_pred_slot[static_cast<std::size_t>(c)] = slot;
      last_use[static_cast<std::size_t>(slot)] = step_index;
      plan->has_contexts = true;
    }
    plan->steps.push_back(step);
  }
  for (const auto& f : fetches) {
    const int slot =
        f.is_op() ? -1 : slot_of[static_cast<std::size_t>(f.node_index())] + f.output_index();
    plan->fetch_slots.push_back(slot);
    plan->fetch_nodes.push_back(f.node_index());
    if (slot >= 0) last_use[static_cast<std::size_t>(slot)] = static_cast<int>(plan->steps.size());
  }
  // Release lists: a slot is recycled right after its last reader (or its producer, if unread).
  std::vector<std::vector<int>> release_at(plan->steps.size());
  for (std::size_t s = 0; s < plan->steps.size(); ++s) {
    const Step& step = plan->steps[s];
    const int outputs = static_cast<int>(step.node->outputs.size());
    for (int k = 0; k < outputs; ++k) {
      const int slot = step.output_base + k;
      const int last = last_use[static_cast<std::size_t>(slot)];
      if (last == static_cast<int>(plan->steps.size())) continue;  // fetched: kept to the end
      release_at[static_cast<std::size_t>(std::max<int>(last, static_cast<int>(s)))].push_back(
          slot);
    }
  }
  for (std::size_t f = 0; f < feeds.size(); ++f) {
    const int slot = plan->feed_slots[f];
    if (slot < 0) continue;
    const int last = last_use[static_cast<std::size_t>(slot)];
    if (last >= 0 && last < static_cast<int>(plan->steps.size())) {
      release_at[static_cast<std::size_t>(last)].push_back(slot);
    }
  }
  for (std::size_t s = 0; s < plan->steps.size(); ++s) {
    plan->steps[s].release_begin = static_cast<int>(plan->releases.size());
    plan->releases.insert(plan->releases.end(), release_at[s].begin(), release_at[s].end());
    plan->steps[s].release_end = static_cast<int>(plan->releases.size());
  }
  plan->counts = std::make_unique<std::atomic<std::uint64_t>[]>(plan->steps.size());
  return plan;
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
  state->pool.set_limit(options.memory_limit_bytes);
  return state;
}

void Session::Impl::release_state(std::unique_ptr<RunState> state) {
  const std::lock_guard lock(mutex);
  free_states.push_back(std::move(state));
}

bool Session::Impl::context_active(const Plan& plan, RunState& state, int context) {
  auto& active = state.context_active[static_cast<std::size_t>(context)];
  if (active < 0) {
    const auto& ctx = graph.context(context);
    bool on = ctx.parent == 0 || context_active(plan, state, ctx.parent);
    if (on) {
      const int slot = plan.context_pred_slot[static_cast<std::size_t>(context)];
      on = state.produced[static_cast<std::size_t>(slot)] &&
           state.slots[static_cast<std::size_t>(slot)].data<bool>()[0] == ctx.branch;
    }
    active = on ? 1 : 0;
  }
  return active == 1;
}

void Session::Impl::check_numerics(const Node& node, const Array* outputs, int count) {
  for (int k = 0; k < count; ++k) {
    const Array& a = outputs[k];
    if (is_floating(a.dtype()) && !detail::all_finite(a)) {
      std::string inputs;
      for (const auto& in : node.inputs) {
        inputs += (inputs.empty() ? "" : ", ") + Tensor(&graph, in.node, in.index).name();
      }
      throw InvalidArgumentError(str("check_numerics: ", node.op->name, " '", node.name,
                                     "' produced NaN or Inf in output ", k, " ", a.dtype(),
                                     a.shape(), " (inputs: ", inputs, ")"));
    }
  }
}

void Session::Impl::execute(Plan& plan, RunState& state, const FeedDict& feeds,
                            std::vector<Array>& results) {
  state.slots.resize(static_cast<std::size_t>(plan.num_slots));
  state.produced.assign(static_cast<std::size_t>(plan.num_slots), 0);
  if (plan.has_contexts)
    state.context_active.assign(static_cast<std::size_t>(graph.num_contexts()), -1);
  struct Cleanup {
    RunState& state;
    ~Cleanup() {
      for (auto& slot : state.slots) state.pool.recycle(slot);
    }
  } cleanup{state};
  for (std::size_t f = 0; f < feeds.size(); ++f) {
    const int slot = plan.feed_slots[f];
    if (slot < 0) continue;
    state.slots[static_cast<std::size_t>(slot)] = feeds[f].second;
    state.produced[static_cast<std::size_t>(slot)] = 1;
  }
  Array* slots = state.slots.data();
  for (std::size_t s = 0; s < plan.steps.size(); ++s) {
    const Step& step = plan.steps[s];
    if (step.context != 0 && !context_active(plan, state, step.context)) continue;
    const Node& node = *step.node;
    KernelContext ctx(graph, node, slots, state.produced.data(),
                      plan.input_slots.data() + step.input_begin, step.output_base, state.pool,
                      variables);
    if (plan.has_contexts && !node.op->accepts_missing_inputs) {
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        if (!ctx.has_input(i)) {
          throw InternalError(
              str(node.op->name, " '", node.name, "': input ", i, " was not computed"));
        }
      }
    }
    try {
      node.op->kernel(ctx);
    } catch (const ValueError& e) {
      // A value computed at run time is wrong (a fed shape whose element count overflows, ...):
      // InvalidArgumentError, naming the node, as for every other run-time value.
      throw InvalidArgumentError(str(node.op->name, " '", node.name, "': ", e.what()));
    } catch (const Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw ResourceExhaustedError(str(node.op->name, " '", node.name, "': out of memory"));
    } catch (const std::exception& e) {
      throw InternalError(str(node.op->name, " '", node.name, "': ", e.what()));
    }
    plan.counts[s].fetch_add(1, std::memory_order_relaxed);
    if (options.check_numerics) {
      check_numerics(node, slots + step.output_base, static_cast<int>(node.outputs.size()));
    }
    for (int r = step.release_begin; r < step.release_end; ++r) {
      state.pool.recycle(slots[plan.releases[static_cast<std::size_t>(r)]]);
    }
  }
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
    results.push_back(slots[slot]);  // shares storage; the slot's reference is dropped at cleanup
  }
}

Session::Session(Graph& graph, SessionOptions options)
    : impl_(std::make_unique<Impl>(graph, options)) {}
Session::~Session() = default;

std::vector<Array> Session::run(const std::vector<Tensor>& fetches, const FeedDict& feeds) {
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
