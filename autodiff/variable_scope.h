// TF1 variable scopes and get_variable: scoped variable names, reuse (false / true / auto),
// default-name uniquification as TF1 layers do it, and the sum of the regularization losses.
// The rules and error texts are TF r2.4's (spec/batch_normalization.md, sections 2 and 3).
#pragma once

#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"

namespace ad {

// Reuse (kFalse, kTrue, kAuto) is declared in autodiff/graph.h, which keeps the current scope.
// Prints "false", "true" or "auto".
std::ostream& operator<<(std::ostream& out, Reuse reuse);

// RAII variable scope. While it lives, get_variable names variables "<scope>/<name>" and applies
// its reuse; it also opens a name scope of the same name for the ops recorded meanwhile (made
// unique as name scopes are: the second opening of "bn" records ops under "bn_1/").
class VariableScope {
 public:
  // Opens `name` (which may contain '/') relative to the current variable scope.
  VariableScope(Graph& graph, std::string_view name, Reuse reuse = Reuse::kFalse);

  // TF's variable_scope(None, default_name=name): the first opening under the current scope is
  // "name", later ones "name_1", "name_2", ... Counters are per parent scope and an explicit
  // opening of the same name counts too; leaving a scope opened by name resets the counters below
  // it, so re-entering "s" gives "s/name" again. With reuse kTrue or kAuto given here the name is
  // used as is, without a suffix (how TF1 layers pick their scope when called with reuse).
  struct DefaultName {
    std::string_view name;
  };
  VariableScope(Graph& graph, DefaultName default_name, Reuse reuse = Reuse::kFalse);

  // Re-enters a scope captured earlier by its full name (TF's variable_scope(scope_object)): the
  // name is absolute, the ops go to the name scope "<full_name>/", and on exit the counters below
  // it are restored instead of reset.
  struct FullName {
    std::string_view name;
  };
  VariableScope(Graph& graph, FullName full_name, Reuse reuse = Reuse::kFalse);

  VariableScope(const VariableScope&) = delete;
  VariableScope& operator=(const VariableScope&) = delete;
  VariableScope(VariableScope&&) = delete;
  VariableScope& operator=(VariableScope&&) = delete;
  ~VariableScope();

  // The full name, without a trailing '/' ("outer/inner").
  [[nodiscard]] const std::string& name() const { return name_; }
  // The effective reuse: the given one, or the enclosing scope's when kFalse was given.
  [[nodiscard]] Reuse reuse() const { return reuse_; }
  // The name scope the ops of this scope were recorded under, ending with '/' ("bn_1/").
  [[nodiscard]] const std::string& name_scope() const { return name_scope_; }

 private:
  void enter(std::string full_name, Reuse reuse);

  Graph& graph_;
  Graph::VariableScopeState saved_;
  std::string name_;
  Reuse reuse_ = Reuse::kFalse;
  std::string name_scope_;
  std::optional<NameScope> ops_scope_;
  // Only for a re-entered scope: the counters to restore on exit.
  std::optional<std::map<std::string, int, std::less<>>> saved_counts_;
};

// The full name of the current variable scope ("" at the root).
[[nodiscard]] std::string current_variable_scope(const Graph& graph);
// The effective reuse of the current variable scope.
[[nodiscard]] Reuse current_reuse(const Graph& graph);

// TF1 get_variable: the variable "<current scope>/<name>", created from `options` or, when the
// scope reuses, the existing one. ValueError, with TF's wording, when it exists and reuse is off
// ("... already exists, disallowed. Did you mean to set reuse=true or reuse=auto in
// VariableScope?"), when reuse is kTrue and it does not exist, and when an existing variable's
// shape or dtype differs from `options` ("Trying to share variable bn/gamma, but specified shape
// [3] and found shape [4]."). On reuse the given initializer, regularizer, constraint, trainable
// flag and collections are ignored, so no second regularization loss is added.
[[nodiscard]] Variable get_variable(Graph& graph, std::string_view name,
                                    const VariableOptions& options);

// The sum of the REGULARIZATION_LOSSES whose names start with `scope` (all when empty), as a
// scalar named "total_regularization_loss"; a float32 scalar 0 when there are none. ValueError
// when a loss is not a scalar or the losses have different dtypes.
[[nodiscard]] Tensor get_regularization_loss(Graph& graph, std::string_view scope = {});

}  // namespace ad
