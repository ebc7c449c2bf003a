// ad::Graph, the tape: an append-only list of nodes in recording order (always a topological
// order), plus name scopes, control dependencies, cond contexts, collections and the registry of
// variables. Building a model records nodes; nothing is computed until a Session runs them.
#pragma once

#include <any>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/dtype.h"
#include "autodiff/shape.h"
#include "autodiff/tensor.h"

namespace ad {

class KernelContext;
class GradContext;

// A variable scope's reuse (see autodiff/variable_scope.h). kFalse inherits the enclosing scope's
// reuse (TF's reuse=None/False); kTrue only returns existing variables; kAuto (TF's AUTO_REUSE)
// returns them when they exist and creates them otherwise. A scope can turn reuse on for its
// subscopes but never off again, as in TF.
enum class Reuse { kFalse, kTrue, kAuto };

// What an op does: its kernel and how its gradient is recorded. Each op family defines its OpDefs
// next to their builders (autodiff/ops/*.cpp); there is no central table.
struct OpDef {
  std::string_view name;                     // "Mul", "MatMul", ...
  void (*kernel)(KernelContext&) = nullptr;  // computes the outputs at run time
  void (*gradient)(GradContext&) = nullptr;  // records gradient nodes; null: no gradient flows
  bool accepts_missing_inputs = false;       // Merge: runs with inputs from an untaken branch
};

struct TensorSpec {
  DType dtype = DType::Float32;
  Shape shape;
};

struct TensorRef {
  int node = -1;
  int index = 0;
};

struct Node {
  const OpDef* op = nullptr;
  std::string name;
  std::vector<TensorRef> inputs;
  std::vector<int> control_inputs;
  std::vector<TensorSpec> outputs;
  std::any attrs;   // the op's parameters, a struct defined by its family
  int context = 0;  // 0: always runs; otherwise the cond branch it belongs to
};

// A branch of a cond: its nodes run only when `pred` has the value `branch` and the parent
// context is active.
struct CondContext {
  TensorRef pred;
  bool branch = true;
  int parent = 0;
};

// TF1 collection keys.
struct GraphKeys {
  static constexpr std::string_view GLOBAL_VARIABLES = "variables";
  static constexpr std::string_view TRAINABLE_VARIABLES = "trainable_variables";
  static constexpr std::string_view MOVING_AVERAGE_VARIABLES = "moving_average_variables";
  static constexpr std::string_view MODEL_VARIABLES = "model_variables";
  static constexpr std::string_view LOCAL_VARIABLES = "local_variables";
  static constexpr std::string_view METRIC_VARIABLES = "metric_variables";
  static constexpr std::string_view UPDATE_OPS = "update_ops";
  static constexpr std::string_view REGULARIZATION_LOSSES = "regularization_losses";
  static constexpr std::string_view LOSSES = "losses";
  static constexpr std::string_view TRAIN_OP = "train_op";
  static constexpr std::string_view GLOBAL_STEP = "global_step";
  static constexpr std::string_view SUMMARIES = "summaries";
};

using Initializer = std::function<Tensor(Graph& graph, const Shape& shape, DType dtype)>;
using Regularizer = std::function<Tensor(const Tensor& value)>;
using Constraint = std::function<Tensor(const Tensor& value)>;

// Everything the graph knows about one variable. Values live in each Session.
struct VariableDef {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  bool trainable = true;
  Regularizer regularizer;
  Constraint constraint;
  int handle_node = -1;  // the VariableV2 node whose output stands for the variable
  Tensor initial_value;
  Tensor initializer;  // the op assigning initial_value
};

class Graph {
 public:
  Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) = delete;
  Graph& operator=(Graph&&) = delete;
  ~Graph();

  // Records a node and returns its outputs (or, with no outputs, the op itself as one Tensor).
  // Checks that the inputs belong to this graph and are visible from the current cond branch.
  std::vector<Tensor> record(const OpDef& op, std::span<const Tensor> inputs,
                             std::vector<TensorSpec> outputs, std::any attrs = {},
                             std::string_view name = {});
  // Single-output form.
  Tensor record1(const OpDef& op, std::span<const Tensor> inputs, TensorSpec output,
                 std::any attrs = {}, std::string_view name = {});

  [[nodiscard]] const Node& node(int index) const {
    return nodes_[static_cast<std::size_t>(index)];
  }
  [[nodiscard]] int num_nodes() const { return static_cast<int>(nodes_.size()); }
  [[nodiscard]] const TensorSpec& spec(TensorRef ref) const;

  // Names: the current name scope joined with `base`, made unique ("add", "add_1", ...).
  [[nodiscard]] std::string unique_name(std::string_view base, bool mark_used = true);
  [[nodiscard]] const std::string& name_scope() const { return name_scope_; }
  // Looks a node up by its full name; -1 when there is none.
  [[nodiscard]] int find_node(std::string_view name) const;

  // Collections, in insertion order. `scope` keeps the entries whose name starts with it.
  void add_to_collection(std::string_view key, const Tensor& value);
  void add_to_collection(std::string_view key, std::span<const Tensor> values);
  [[nodiscard]] std::vector<Tensor> get_collection(std::string_view key,
                                                   std::string_view scope = {}) const;
  [[nodiscard]] std::vector<std::string> collection_keys() const;

  // Variables.
  [[nodiscard]] int num_variables() const { return static_cast<int>(variables_.size()); }
  [[nodiscard]] const VariableDef& variable(int id) const {
    return variables_[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] VariableDef& mutable_variable(int id) {
    return variables_[static_cast<std::size_t>(id)];
  }
  // -1 when no variable has that full name.
  [[nodiscard]] int find_variable(std::string_view name) const;
  int add_variable(VariableDef def);

  // Seeds: the graph-level seed (unset by default) and a counter giving each random op its own
  // op seed when none is given, so a program gives the same values on every run.
  void set_seed(std::int64_t seed) { seed_ = seed; }
  [[nodiscard]] std::optional<std::int64_t> seed() const { return seed_; }
  [[nodiscard]] std::int64_t next_op_seed() { return op_seed_counter_++; }

  // Cond contexts and control dependencies (managed by CondScope / ControlDependencies).
  [[nodiscard]] int current_context() const { return context_; }
  [[nodiscard]] const CondContext& context(int id) const {
    return contexts_[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] int num_contexts() const { return static_cast<int>(contexts_.size()); }
  int add_context(CondContext context);
  void set_current_context(int context) { context_ = context; }
  // True when nodes of context `inner` may use values of context `outer`.
  [[nodiscard]] bool context_visible(int outer, int inner) const;

  // Per-scope counters that default-named variable scopes use to uniquify their names (see
  // autodiff/variable_scope.h).
  [[nodiscard]] std::map<std::string, int, std::less<>>& scope_name_counts() {
    return scope_counts_;
  }

 private:
  friend class NameScope;
  friend class ControlDependencies;
  friend class VariableScope;

  std::deque<Node> nodes_;  // a deque: nodes never move, so plans may point at them
  std::map<std::string, int, std::less<>> name_counts_;
  std::map<std::string, int, std::less<>> node_by_name_;
  std::string name_scope_;
  std::vector<std::vector<int>> control_stack_;
  std::vector<CondContext> contexts_;
  int context_ = 0;
  std::map<std::string, std::vector<Tensor>, std::less<>> collections_;
  std::vector<VariableDef> variables_;
  std::map<std::string, int, std::less<>> variable_by_name_;
  std::optional<std::int64_t> seed_;
  std::int64_t op_seed_counter_ = 0;
  std::map<std::string, int, std::less<>> scope_counts_;

 public:
  // The current variable scope (see autodiff/variable_scope.h); kept here so scopes are per graph.
  struct VariableScopeState {
    std::string name;
    Reuse reuse = Reuse::kFalse;
  };
  VariableScopeState variable_scope;
};

// Opens a name scope for the nodes recorded while it lives: NameScope scope(g, "layer1").
// The scope name is made unique ("layer1_1") unless it ends with "/", which re-enters it as is.
class NameScope {
 public:
  NameScope(Graph& graph, std::string_view name);
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;
  NameScope(NameScope&&) = delete;
  NameScope& operator=(NameScope&&) = delete;
  ~NameScope();
  // The full scope, ending with "/".
  [[nodiscard]] const std::string& name() const { return graph_.name_scope_; }

 private:
  Graph& graph_;
  std::string saved_;
};

// Nodes recorded while it lives run only after `deps` (control inputs). An empty list clears the
// enclosing control dependencies, as TF's control_dependencies(None).
class ControlDependencies {
 public:
  explicit ControlDependencies(std::span<const Tensor> deps);
  ControlDependencies(std::initializer_list<Tensor> deps)
      : ControlDependencies(std::span<const Tensor>(deps.begin(), deps.size())) {}
  ControlDependencies(Graph& graph, std::span<const Tensor> deps);
  ControlDependencies(const ControlDependencies&) = delete;
  ControlDependencies& operator=(const ControlDependencies&) = delete;
  ControlDependencies(ControlDependencies&&) = delete;
  ControlDependencies& operator=(ControlDependencies&&) = delete;
  ~ControlDependencies();

 private:
  Graph* graph_ = nullptr;
};

// Records nodes into cond context `context` while it lives (used by cond and by gradients).
class ContextScope {
 public:
  ContextScope(Graph& graph, int context) : graph_(graph), saved_(graph.current_context()) {
    graph.set_current_context(context);
  }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;
  ContextScope(ContextScope&&) = delete;
  ContextScope& operator=(ContextScope&&) = delete;
  ~ContextScope() { graph_.set_current_context(saved_); }

 private:
  Graph& graph_;
  int saved_;
};

}  // namespace ad
