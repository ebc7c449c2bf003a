// Graph: recording, names, scopes, collections, contexts and the variable registry.
#include "autodiff/graph.h"

#include <algorithm>
#include <mutex>
#include <unordered_set>

#include "autodiff/error.h"

namespace ad {

namespace {
// The graphs alive now, so that a message about a tensor of a destroyed graph (a fetch of another
// graph, say) is not built from freed memory. Only Tensor::name() consults it: it is off the paths
// a run takes when nothing is wrong.
struct LiveGraphs {
  std::mutex mutex;
  std::unordered_set<const Graph*> graphs;
};
LiveGraphs& live_graphs() {
  static auto* live = new LiveGraphs;  // never destroyed: graphs may outlive static destruction
  return *live;
}
bool is_live(const Graph* graph) {
  auto& live = live_graphs();
  const std::lock_guard lock(live.mutex);
  return live.graphs.contains(graph);
}
}  // namespace

Graph::Graph() {
  contexts_.push_back(CondContext{});
  auto& live = live_graphs();
  const std::lock_guard lock(live.mutex);
  live.graphs.insert(this);
}

Graph::~Graph() {
  auto& live = live_graphs();
  const std::lock_guard lock(live.mutex);
  live.graphs.erase(this);
}

const TensorSpec& Graph::spec(TensorRef ref) const {
  return node(ref.node).outputs[static_cast<std::size_t>(ref.index)];
}

namespace {

// Int32 and UInt8 reach only the ops that declare them (OpDef::narrow_integers); anywhere else they
// are a ValueError naming the op, the node and the dtype, never a kernel running on wrong types.
void require_dtypes_supported(const OpDef& op, const std::string& node,
                              std::span<const Tensor> inputs,
                              const std::vector<TensorSpec>& outputs) {
  if (op.narrow_integers) return;
  const auto refuse = [&](const std::string& what, DType dtype) {
    throw ValueError(str(op.name, " '", node, "': ", what, " is ", dtype, ", which ", op.name,
                         " does not support (", dtype,
                         " is for placeholders, variables, cast, comparisons, indices and "
                         "labels; cast it to int64 or a floating dtype first)"));
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (is_narrow_integer(inputs[i].dtype()))
      refuse(str("input ", i, " ('", inputs[i].name(), "')"), inputs[i].dtype());
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (is_narrow_integer(outputs[i].dtype)) refuse(str("output ", i), outputs[i].dtype);
  }
}

}  // namespace

// Input i of a node being recorded: checked (not empty, of this graph, an output), and captured
// into the current while loop when it comes from outside it.
TensorRef Graph::resolve_input(const OpDef& op, const std::string& node, std::size_t i,
                               const Tensor& t) {
  if (!t) throw ValueError(str(op.name, " '", node, "': input ", i, " is an empty Tensor"));
  if (&t.graph() != this) {
    throw ValueError(
        str(op.name, " '", node, "': input ", i, " ('", t.name(), "') belongs to another graph"));
  }
  (void)t.op();  // a handle to a node or output this graph lacks is a ValueError
  if (t.is_op()) {
    throw ValueError(str(op.name, " '", node, "': input ", i, " ('", t.name(),
                         "') is an op without outputs; use it in ControlDependencies instead"));
  }
  const TensorRef ref{t.node_index(), t.output_index()};
  const int producer_context = this->node(t.node_index()).context;
  if (context_visible(producer_context, context_)) return ref;
  // A value from outside an enclosing while loop is captured (a Merge, which takes values from
  // branches it is outside of, keeps them as they are).
  const bool other_loop = enclosing_loop(producer_context) != enclosing_loop(context_);
  const auto captured = op.accepts_missing_inputs && !other_loop ? std::optional<TensorRef>(ref)
                                                                 : capture(ref, context_);
  if (!captured) {
    throw ValueError(str(op.name, " '", node, "': input ", i, " ('", t.name(),
                         "') was created inside a ", other_loop ? "while loop" : "cond branch",
                         " and cannot be used outside it; return it from the ",
                         other_loop ? "loop body" : "branch function", " instead"));
  }
  return *captured;
}

std::vector<Tensor> Graph::record(const OpDef& op, std::span<const Tensor> inputs,
                                  std::vector<TensorSpec> outputs, std::any attrs,
                                  std::string_view name) {
  Node n;
  n.op = &op;
  n.name = unique_name(name.empty() ? op.name : name);
  n.context = context_;
  n.inputs.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    n.inputs.push_back(resolve_input(op, n.name, i, inputs[i]));
  }
  require_dtypes_supported(op, n.name, inputs, outputs);
  for (auto frame = control_stack_.rbegin(); frame != control_stack_.rend(); ++frame) {
    if (frame->size() == 1 && frame->front() < 0) break;  // a cleared frame hides the outer ones
    for (int dep : *frame) {
      if (std::find(n.control_inputs.begin(), n.control_inputs.end(), dep) ==
          n.control_inputs.end()) {
        n.control_inputs.push_back(dep);
      }
    }
  }
  n.outputs = std::move(outputs);
  n.attrs = std::move(attrs);
  const int index = num_nodes();
  node_by_name_.emplace(n.name, index);
  const auto num_outputs = n.outputs.size();
  nodes_.push_back(std::move(n));
  std::vector<Tensor> result;
  if (num_outputs == 0) {
    result.emplace_back(this, index, -1);
  } else {
    for (std::size_t i = 0; i < num_outputs; ++i)
      result.emplace_back(this, index, static_cast<int>(i));
  }
  return result;
}

Tensor Graph::record1(const OpDef& op, std::span<const Tensor> inputs, TensorSpec output,
                      std::any attrs, std::string_view name) {
  std::vector<TensorSpec> outputs;
  outputs.push_back(std::move(output));
  return record(op, inputs, std::move(outputs), std::move(attrs), name).front();
}

std::string Graph::unique_name(std::string_view base, bool mark_used) {
  std::string full = name_scope_;
  full += base;
  auto it = name_counts_.find(full);
  if (it == name_counts_.end()) {
    if (mark_used) name_counts_.emplace(full, 1);
    return full;
  }
  // Find the first free suffix; a user may have taken "x_1" explicitly.
  int count = it->second;
  std::string candidate;
  do {
    candidate = full + "_" + std::to_string(count++);
  } while (name_counts_.contains(candidate));
  if (mark_used) {
    it->second = count;
    name_counts_.emplace(candidate, 1);
  }
  return candidate;
}

int Graph::find_node(std::string_view name) const {
  const auto it = node_by_name_.find(name);
  return it == node_by_name_.end() ? -1 : it->second;
}

namespace {

// Levenshtein distance, one row at a time.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string listing(const std::vector<std::string>& names) {
  if (names.empty()) return "the graph has no nodes";
  std::string out = "closest: ";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", '" : "'") + names[i] + "'";
  return out;
}

}  // namespace

std::vector<std::string> closest_names(std::string_view name,
                                       const std::vector<std::string>& candidates,
                                       std::size_t count) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  scored.reserve(candidates.size());
  for (const auto& c : candidates) scored.emplace_back(edit_distance(name, c), c);
  const std::size_t keep = std::min(count, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                    scored.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < keep; ++i) out.push_back(std::move(scored[i].second));
  return out;
}

std::vector<std::string> Graph::closest_node_names(std::string_view name, std::size_t count) const {
  std::vector<std::string> names;
  names.reserve(nodes_.size());
  for (const auto& n : nodes_) names.push_back(n.name);
  return closest_names(name, names, count);
}

Tensor Graph::get_operation_by_name(std::string_view name) {
  const int index = find_node(name);
  if (index < 0) {
    throw NotFoundError(str("get_operation_by_name: no operation named '", name, "' (",
                            listing(closest_node_names(name)), ")"));
  }
  return {this, index, node(index).outputs.empty() ? -1 : 0};
}

Tensor Graph::get_tensor_by_name(std::string_view name) {
  const auto colon = name.rfind(':');
  const std::string_view op_name = name.substr(0, colon);
  const std::string_view digits =
      colon == std::string_view::npos ? std::string_view{} : name.substr(colon + 1);
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw ValueError(str("get_tensor_by_name: '", name,
                         "' is not a tensor name; tensor names look like <op>:<index>"));
  }
  const int output = std::stoi(std::string(digits));
  const int index = find_node(op_name);
  if (index < 0) {
    std::vector<std::string> tensors;
    for (const auto& n : nodes_) {
      for (std::size_t k = 0; k < n.outputs.size(); ++k)
        tensors.push_back(n.name + ":" + std::to_string(k));
    }
    throw NotFoundError(str("get_tensor_by_name: no tensor named '", name, "' (",
                            listing(closest_names(name, tensors, 3)), ")"));
  }
  const auto num_outputs = node(index).outputs.size();
  if (static_cast<std::size_t>(output) >= num_outputs) {
    std::string existing;
    for (std::size_t k = 0; k < num_outputs; ++k)
      existing += str(k ? ", '" : " ('", op_name, ":", k, "'");
    throw NotFoundError(str(
        "get_tensor_by_name: no tensor named '", name, "': operation '", op_name, "' has ",
        num_outputs, num_outputs == 1 ? " output" : " outputs", existing, num_outputs ? ")" : ""));
  }
  return {this, index, output};
}

void Graph::add_to_collection(std::string_view key, const Tensor& value) {
  if (!value) throw ValueError(str("add_to_collection '", key, "': the value is an empty Tensor"));
  if (&value.graph() != this) {
    throw ValueError(
        str("add_to_collection '", key, "': '", value.name(), "' belongs to another graph"));
  }
  auto it = collections_.find(key);
  if (it == collections_.end())
    it = collections_.emplace(std::string(key), std::vector<Tensor>{}).first;
  it->second.push_back(value);
}

void Graph::add_to_collection(std::string_view key, std::span<const Tensor> values) {
  for (const auto& v : values) add_to_collection(key, v);
}

std::vector<Tensor> Graph::get_collection(std::string_view key, std::string_view scope) const {
  const auto it = collections_.find(key);
  if (it == collections_.end()) return {};
  if (scope.empty()) return it->second;
  std::vector<Tensor> out;
  for (const auto& t : it->second) {
    if (node(t.node_index()).name.starts_with(scope)) out.push_back(t);
  }
  return out;
}

std::vector<std::string> Graph::collection_keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, values] : collections_) keys.push_back(key);
  return keys;
}

int Graph::find_variable(std::string_view name) const {
  const auto it = variable_by_name_.find(name);
  return it == variable_by_name_.end() ? -1 : it->second;
}

int Graph::add_variable(VariableDef def) {
  if (variable_by_name_.contains(def.name)) {
    throw ValueError(str("Variable ", def.name, " already exists"));
  }
  const int id = num_variables();
  variable_by_name_.emplace(def.name, id);
  variables_.push_back(std::move(def));
  return id;
}

int Graph::add_context(CondContext context) {
  contexts_.push_back(context);
  return num_contexts() - 1;
}

std::pair<int, int> Graph::add_cond_contexts(TensorRef pred, int parent) {
  CondContext branch;
  branch.pred = pred;
  branch.parent = parent;
  branch.branch = true;
  const int if_true = add_context(branch);
  branch.branch = false;
  branch.sibling = if_true;
  const int if_false = add_context(branch);
  contexts_[static_cast<std::size_t>(if_true)].sibling = if_false;
  return {if_true, if_false};
}

bool Graph::context_visible(int outer, int inner) const {
  for (int c = inner;; c = context(c).parent) {
    if (c == outer) return true;
    if (c == 0 || context(c).loop) return false;
  }
}

int Graph::add_loop_context(int parent, std::string loop_name) {
  CondContext loop;
  loop.parent = parent;
  loop.loop = true;
  loop.loop_name = std::move(loop_name);
  return add_context(std::move(loop));
}

int Graph::enclosing_loop(int id) const {
  while (id != 0 && !context(id).loop) id = context(id).parent;
  return id;
}

namespace {
// Never runs: a While node feeds its LoopInputs.
void loop_input_kernel(KernelContext& /*ctx*/) {
  throw InternalError("LoopInput: a loop input runs only inside its loop, which feeds it");
}
const OpDef kLoopInputOp{.name = "LoopInput", .kernel = loop_input_kernel};
}  // namespace

std::optional<TensorRef> Graph::capture(TensorRef ref, int context) {
  const int producer = node(ref.node).context;
  if (context_visible(producer, context)) return ref;
  const int loop = enclosing_loop(context);
  if (loop == 0) return std::nullopt;
  const auto outer = capture(ref, contexts_[static_cast<std::size_t>(loop)].parent);
  if (!outer) return std::nullopt;
  for (const auto& [input, value] : contexts_[static_cast<std::size_t>(loop)].captures) {
    if (value.node == outer->node && value.index == outer->index) return TensorRef{input, 0};
  }
  // Recorded at the loop's level, outside any control dependency, named after what it stands for.
  const int saved_context = context_;
  auto saved_stack = std::move(control_stack_);
  control_stack_.clear();
  context_ = loop;
  Node n;
  n.op = &kLoopInputOp;
  n.name =
      unique_name(node(outer->node).name.substr(node(outer->node).name.rfind('/') + 1) + "_enter");
  n.context = loop;
  n.outputs.push_back(spec(*outer));
  const int index = num_nodes();
  node_by_name_.emplace(n.name, index);
  nodes_.push_back(std::move(n));
  context_ = saved_context;
  control_stack_ = std::move(saved_stack);
  contexts_[static_cast<std::size_t>(loop)].captures.emplace_back(index, *outer);
  return TensorRef{index, 0};
}

NameScope::NameScope(Graph& graph, std::string_view name)
    : graph_(graph), saved_(graph.name_scope_) {
  if (name.empty()) return;
  if (name == "/") {
    graph.name_scope_.clear();  // the root scope
  } else if (name.ends_with('/')) {
    graph.name_scope_ = std::string(name);
  } else {
    graph.name_scope_ = graph.unique_name(name) + "/";
  }
}

NameScope::~NameScope() { graph_.name_scope_ = saved_; }

namespace {
std::vector<int> control_frame(const Graph* graph, std::span<const Tensor> deps) {
  std::vector<int> frame;
  for (const auto& d : deps) {
    if (!d) throw ValueError("ControlDependencies: an empty Tensor in the list");
    if (&d.graph() != graph) throw ValueError("ControlDependencies: tensors of different graphs");
    (void)d.op();  // a forged node (or output) is a ValueError here, not a crash in a later run
    frame.push_back(d.node_index());
  }
  return frame;
}
}  // namespace

ControlDependencies::ControlDependencies(std::span<const Tensor> deps) {
  // An empty list adds nothing and keeps the enclosing dependencies (TF1's []): no frame at all.
  if (deps.empty()) return;
  if (!deps.front()) throw ValueError("ControlDependencies: an empty Tensor in the list");
  graph_ = &deps.front().graph();
  graph_->control_stack_.push_back(control_frame(graph_, deps));
}

ControlDependencies::ControlDependencies(Graph& graph, std::span<const Tensor> deps)
    : graph_(&graph) {
  graph_->control_stack_.push_back(control_frame(graph_, deps));
}

ControlDependencies::ControlDependencies(Graph& graph, std::nullopt_t /*none*/) : graph_(&graph) {
  graph_->control_stack_.push_back({-1});  // hides the enclosing frames
}

ControlDependencies::~ControlDependencies() {
  if (graph_ != nullptr) graph_->control_stack_.pop_back();
}

// Tensor accessors live here because they read the graph. A handle is checked before it is
// followed: a forged or stale one (a node or output the graph lacks) is a ValueError, not a crash.
namespace {
const TensorSpec* checked_spec(const Graph* graph, int node, int index) {
  if (graph == nullptr) throw ValueError("Tensor: the tensor is empty (default-constructed)");
  if (node < 0 || node >= graph->num_nodes()) {
    throw ValueError(str("Tensor: node ", node, " does not exist (the graph has ",
                         graph->num_nodes(), " nodes)"));
  }
  const auto& outputs = graph->node(node).outputs;
  if (index < -1 || index >= static_cast<int>(outputs.size())) {
    throw ValueError(str("Tensor: '", graph->node(node).name, "' has ", outputs.size(),
                         " outputs, not an output ", index));
  }
  return index < 0 ? nullptr : &outputs[static_cast<std::size_t>(index)];
}
}  // namespace

const Shape& Tensor::shape() const {
  static const Shape kOpShape{0};
  const TensorSpec* spec = checked_spec(graph_, node_, index_);
  return spec == nullptr ? kOpShape : spec->shape;
}

DType Tensor::dtype() const {
  const TensorSpec* spec = checked_spec(graph_, node_, index_);
  return spec == nullptr ? DType::Float32 : spec->dtype;
}

std::string Tensor::name() const {
  if (!graph_) return "<empty>";
  if (!is_live(graph_)) return str("<node ", node_, " of a destroyed graph>");
  if (node_ < 0 || node_ >= graph_->num_nodes()) return str("<no node ", node_, ">");
  const auto& n = graph_->node(node_).name;
  return index_ < 0 ? n : n + ":" + std::to_string(index_);
}

Graph& Tensor::graph() const {
  if (!graph_) throw ValueError("Tensor: the tensor is empty (default-constructed)");
  return *graph_;
}

const Node& Tensor::op() const {
  (void)checked_spec(graph_, node_, index_);
  return graph_->node(node_);
}

}  // namespace ad
