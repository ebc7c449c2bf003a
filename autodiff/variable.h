// ad::Variable: named persistent state. The graph records what a variable is; each Session holds
// its value. Reads and assignments are ordinary nodes, ordered by the tape (and by control
// dependencies), so a read recorded before an assignment sees the old value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

struct VariableOptions {
  Shape shape{};
  DType dtype = DType::Float32;
  Initializer initializer{};  // default: zeros
  Regularizer regularizer{};  // its loss goes to REGULARIZATION_LOSSES when the variable is created
  Constraint constraint{};    // applied by optimizers after each update
  bool trainable = true;
  // Collections besides GLOBAL_VARIABLES (and TRAINABLE_VARIABLES when trainable). With
  // LOCAL_VARIABLES among them the variable is local instead of global, as in TF.
  std::vector<std::string> collections{};
};

class Variable {
 public:
  Variable() = default;
  // The variable behind a handle tensor (as found in GLOBAL_VARIABLES and the other collections).
  explicit Variable(const Tensor& handle);

  // Creates a variable with exactly this full name (no scope is applied); ValueError if it exists.
  // Most code uses ad::get_variable, which applies variable scopes and reuse.
  [[nodiscard]] static Variable create(Graph& graph, std::string_view full_name,
                                       const VariableOptions& options);

  explicit operator bool() const { return static_cast<bool>(handle_); }
  [[nodiscard]] const std::string& name() const { return def().name; }
  [[nodiscard]] const Shape& shape() const { return def().shape; }
  [[nodiscard]] DType dtype() const { return def().dtype; }
  [[nodiscard]] bool trainable() const { return def().trainable; }
  [[nodiscard]] const Constraint& constraint() const { return def().constraint; }
  [[nodiscard]] const Regularizer& regularizer() const { return def().regularizer; }
  [[nodiscard]] Graph& graph() const { return handle_.graph(); }
  [[nodiscard]] int id() const;
  // The node that stands for the variable in collections and gradients.
  [[nodiscard]] const Tensor& handle() const { return handle_; }

  // Records a read of the current value.
  [[nodiscard]] Tensor value() const;
  // Record assignments; each returns the new value and can be used as a control dependency.
  Tensor assign(const Tensor& value) const;
  Tensor assign_add(const Tensor& delta) const;
  Tensor assign_sub(const Tensor& delta) const;
  // The op that sets the initial value, and the initial value itself.
  [[nodiscard]] const Tensor& initializer() const { return def().initializer; }
  [[nodiscard]] const Tensor& initial_value() const { return def().initial_value; }

  friend bool operator==(const Variable& a, const Variable& b) { return a.handle_ == b.handle_; }

 private:
  [[nodiscard]] const VariableDef& def() const;
  Tensor handle_;
};

// Variables of the graph's GLOBAL_VARIABLES / TRAINABLE_VARIABLES collections, in creation order.
[[nodiscard]] std::vector<Variable> global_variables(const Graph& graph);
[[nodiscard]] std::vector<Variable> trainable_variables(const Graph& graph);
// The variables of any variable collection (e.g. MOVING_AVERAGE_VARIABLES).
[[nodiscard]] std::vector<Variable> variables_in_collection(const Graph& graph,
                                                            std::string_view key,
                                                            std::string_view scope = {});
// The variable with this full name ("dense/kernel", as Variable::name()); NotFoundError naming the
// closest existing variable names when there is none.
[[nodiscard]] Variable get_variable_by_name(Graph& graph, std::string_view name);
// An op running the initializers of `variables` / of every global variable.
[[nodiscard]] Tensor variables_initializer(Graph& graph, const std::vector<Variable>& variables);
// The same for a non-empty list (the graph is the variables'), as TF's variables_initializer(vars).
[[nodiscard]] Tensor variables_initializer(const std::vector<Variable>& variables);
[[nodiscard]] Tensor global_variables_initializer(Graph& graph);
// The LOCAL_VARIABLES (e.g. the streaming metrics' counters) and the op initializing them.
[[nodiscard]] std::vector<Variable> local_variables(const Graph& graph);
[[nodiscard]] Tensor local_variables_initializer(Graph& graph);

}  // namespace ad
