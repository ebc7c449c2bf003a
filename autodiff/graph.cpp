// Graph: recording, names, scopes, collections, contexts and the variable registry.
#include "autodiff/graph.h"

#include <algorithm>

#include "autodiff/error.h"

namespace ad {

Graph::Graph() { contexts_.push_back(CondContext{}); }
Graph::~Graph() = default;

const TensorSpec& Graph::spec(TensorRef ref) const {
  return node(ref.node).outputs[static_cast<std::size_t>(ref.index)];
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
    const Tensor& t = inputs[i];
    if (!t) throw ValueError(str(op.name, " '", n.name, "': input ", i, " is an empty Tensor"));
    if (&t.graph() != this) {
      throw ValueError(str(op.name, " '", n.name, "': input ", i, " ('", t.name(),
                           "') belongs to another graph"));
    }
    if (t.is_op()) {
      throw ValueError(str(op.name, " '", n.name, "': input ", i, " ('", t.name(),
                           "') is an op without outputs; use it in ControlDependencies instead"));
    }
    const int producer_context = node(t.node_index()).context;
    if (!op.accepts_missing_inputs && !context_visible(producer_context, context_)) {
      throw ValueError(str(op.name, " '", n.name, "': input ", i, " ('", t.name(),
                           "') was created inside a cond branch and cannot be used outside it; "
                           "return it from the branch function instead"));
    }
    n.inputs.push_back({t.node_index(), t.output_index()});
  }
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

bool Graph::context_visible(int outer, int inner) const {
  for (int c = inner;; c = context(c).parent) {
    if (c == outer) return true;
    if (c == 0) return false;
  }
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

ControlDependencies::ControlDependencies(std::span<const Tensor> deps) {
  if (deps.empty()) {
    throw ValueError(
        "ControlDependencies: an empty list needs the graph: ControlDependencies(graph, {})");
  }
  graph_ = &deps.front().graph();
  std::vector<int> frame;
  for (const auto& d : deps) {
    if (!d) throw ValueError("ControlDependencies: empty Tensor in the list");
    if (&d.graph() != graph_)
      throw ValueError("ControlDependencies: tensors from different graphs");
    frame.push_back(d.node_index());
  }
  graph_->control_stack_.push_back(std::move(frame));
}

ControlDependencies::ControlDependencies(Graph& graph, std::span<const Tensor> deps)
    : graph_(&graph) {
  std::vector<int> frame;
  for (const auto& d : deps) {
    if (!d || &d.graph() != graph_)
      throw ValueError("ControlDependencies: tensor from another graph");
    frame.push_back(d.node_index());
  }
  if (frame.empty()) frame.push_back(-1);  // clears the enclosing dependencies
  graph_->control_stack_.push_back(std::move(frame));
}

ControlDependencies::~ControlDependencies() { graph_->control_stack_.pop_back(); }

// Tensor accessors live here because they read the graph.
const Shape& Tensor::shape() const {
  static const Shape kOpShape{0};
  if (index_ < 0) return kOpShape;
  return graph_->node(node_).outputs[static_cast<std::size_t>(index_)].shape;
}

DType Tensor::dtype() const {
  if (index_ < 0) return DType::Float32;
  return graph_->node(node_).outputs[static_cast<std::size_t>(index_)].dtype;
}

std::string Tensor::name() const {
  if (!graph_) return "<empty>";
  const auto& n = graph_->node(node_).name;
  return index_ < 0 ? n : n + ":" + std::to_string(index_);
}

Graph& Tensor::graph() const {
  if (!graph_) throw ValueError("Tensor: the tensor is empty (default-constructed)");
  return *graph_;
}

const Node& Tensor::op() const { return graph().node(node_); }

}  // namespace ad
