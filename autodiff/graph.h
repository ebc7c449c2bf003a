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
#include <utility>
#include <vector>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/shape.h"
#include "gradtape/autodiff/tensor.h"

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
  // Takes and makes Int32 and UInt8 values (placeholders, cast, comparisons, indices); for the
  // other ops Graph::record refuses those dtypes, naming the op and the dtype.
  bool narrow_integers = false;
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
// context is active. `sibling` is the other branch of the same cond (reverse mode merges a
// gradient leaving a branch with zeros from it).
//
// A while loop's condition or body is a context too (`loop` true): its nodes run only inside the
// loop's own plan (see autodiff/while_loop.h). A value from outside that a loop's nodes read is
// captured: a LoopInput node recorded in the loop stands for it (`captures`), and the While node
// takes the outside value as an input and feeds it in.
struct CondContext {
  TensorRef pred;
  bool branch = true;
  int parent = 0;
  int sibling = 0;
  bool loop = false;
  std::string loop_name;                            // the while loop's name, for messages
  std::vector<std::pair<int, TensorRef>> captures;  // LoopInput node -> the value outside
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
  // TF1's look-ups: the output "<op>:<index>" ("scope/op:0") and the op "scope/op" (for an op
  // without outputs, the Tensor that stands for it). NotFoundError naming the closest existing
  // names when there is no such op or output; ValueError for a tensor name without ":<index>".
  [[nodiscard]] Tensor get_tensor_by_name(std::string_view name);
  [[nodiscard]] Tensor get_operation_by_name(std::string_view name);
  // Up to `count` node names closest to `name` (edit distance, then name order).
  [[nodiscard]] std::vector<std::string> closest_node_names(std::string_view name,
                                                            std::size_t count = 3) const;

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
  // Adds the two branches of a cond on `pred` inside `parent`, each the other's sibling; returns
  // {true branch, false branch}.
  std::pair<int, int> add_cond_contexts(TensorRef pred, int parent);
  // True for a cond branch (context 0 is the root; loop contexts are not branches).
  [[nodiscard]] bool is_cond_context(int id) const { return id != 0 && !context(id).loop; }
  // Adds a while loop's context inside `parent`.
  int add_loop_context(int parent, std::string loop_name);
  // The innermost loop context enclosing `id` (itself included); 0 when none.
  [[nodiscard]] int enclosing_loop(int id) const;
  // A tensor usable in `context` standing for `ref`: `ref` itself when visible there, otherwise
  // the LoopInput capturing it into the enclosing loop(s), recorded on first use. Empty when `ref`
  // cannot be reached from `context` (it lies in a cond branch or a loop `context` is not in).
  [[nodiscard]] std::optional<TensorRef> capture(TensorRef ref, int context);
  void set_current_context(int context) { context_ = context; }
  // True when nodes of context `inner` may use values of context `outer` directly (a loop context
  // is a boundary: values from outside it are captured).
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
  TensorRef resolve_input(const OpDef& op, const std::string& node, std::size_t i, const Tensor& t);

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

// Up to `count` of `candidates` closest to `name` (edit distance, then name order): for NotFound
// messages.
[[nodiscard]] std::vector<std::string> closest_names(std::string_view name,
                                                     const std::vector<std::string>& candidates,
                                                     std::size_t count = 3);

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

// Nodes recorded while it lives run only after `deps` (control inputs), and after the enclosing
// scopes' dependencies, as TF1's control_dependencies:
//   ControlDependencies deps({a, b});          // control_dependencies([a, b])
//   ControlDependencies deps(update_ops);      // an empty list adds nothing, keeps the outer ones
//   ControlDependencies none(graph, std::nullopt);  // control_dependencies(None): clears the
//   auto none = ControlDependencies::clear(graph);  // enclosing dependencies while it lives
// Dependencies added inside a cleared scope apply again.
class ControlDependencies {
 public:
  explicit ControlDependencies(std::span<const Tensor> deps);
  ControlDependencies(std::initializer_list<Tensor> deps)
      : ControlDependencies(std::span<const Tensor>(deps.begin(), deps.size())) {}
  ControlDependencies(Graph& graph, std::span<const Tensor> deps);
  ControlDependencies(Graph& graph, std::nullopt_t none);
  [[nodiscard]] static ControlDependencies clear(Graph& graph) {
    return ControlDependencies(graph, std::nullopt);
  }
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
