// Variable scopes, get_variable and the regularization-loss sum, following TF r2.4's
// variable_scope.py (_VariableScopeStore counters, _get_unique_variable_scope, _VariableStore).
#include "autodiff/variable_scope.h"

#include <ostream>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/ops/basic.h"

namespace ad {

namespace {

std::string join(std::string_view parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return str(parent, "/", name);
}

void check_scope_name(std::string_view name, const char* what) {
  if (name.empty()) {
    throw ValueError(str("VariableScope: the ", what,
                         " is empty; use VariableScope::DefaultName{...} for a generated name"));
  }
  if (name.front() == '/' || name.back() == '/') {
    throw ValueError(str("VariableScope: the ", what, " '", name,
                         "' must not start or end with '/' (scopes are joined with '/')"));
  }
}

// TF's _get_unique_variable_scope: `prefix` unless a scope of that name was already opened under
// the current scope, else the first "prefix_<k>" not yet opened.
std::string unique_scope_name(Graph& graph, std::string_view prefix) {
  const auto& counts = graph.scope_name_counts();
  const std::string base = join(graph.variable_scope.name, prefix);
  const auto opened = [&](const std::string& full) {
    const auto it = counts.find(full);
    return it != counts.end() && it->second > 0;
  };
  if (!opened(base)) return std::string(prefix);
  int suffix = 1;
  while (opened(str(base, "_", suffix))) ++suffix;
  return str(prefix, "_", suffix);
}

}  // namespace

std::ostream& operator<<(std::ostream& out, Reuse reuse) {
  switch (reuse) {
    case Reuse::kTrue:
      return out << "true";
    case Reuse::kAuto:
      return out << "auto";
    case Reuse::kFalse:
      break;
  }
  return out << "false";
}

VariableScope::VariableScope(Graph& graph, std::string_view name, Reuse reuse)
    : graph_(graph), saved_(graph.variable_scope) {
  check_scope_name(name, "name");
  ops_scope_.emplace(graph, name);
  enter(join(saved_.name, name), reuse);
}

VariableScope::VariableScope(Graph& graph, DefaultName default_name, Reuse reuse)
    : graph_(graph), saved_(graph.variable_scope) {
  check_scope_name(default_name.name, "default name");
  // TF opens the name scope before it picks the unique variable-scope name.
  ops_scope_.emplace(graph, default_name.name);
  const std::string unique = reuse == Reuse::kFalse ? unique_scope_name(graph, default_name.name)
                                                    : std::string(default_name.name);
  enter(join(saved_.name, unique), reuse);
}

VariableScope::VariableScope(Graph& graph, FullName full_name, Reuse reuse)
    : graph_(graph), saved_(graph.variable_scope) {
  check_scope_name(full_name.name, "full name");
  ops_scope_.emplace(graph, str(full_name.name, "/"));
  enter(std::string(full_name.name), reuse);
  saved_counts_ = graph.scope_name_counts();
}

void VariableScope::enter(std::string full_name, Reuse reuse) {
  name_ = std::move(full_name);
  reuse_ = reuse != Reuse::kFalse ? reuse : saved_.reuse;
  name_scope_ = graph_.name_scope();
  ++graph_.scope_name_counts()[name_];
  graph_.variable_scope = {name_, reuse_};
}

VariableScope::~VariableScope() {
  auto& counts = graph_.scope_name_counts();
  if (saved_counts_) {
    counts = std::move(*saved_counts_);
  } else {
    // TF's close_variable_subscopes: scopes below this one start counting afresh next time.
    const std::string prefix = name_ + "/";
    for (auto it = counts.lower_bound(prefix); it != counts.end() && it->first.starts_with(prefix);)
      it = counts.erase(it);
  }
  graph_.variable_scope = saved_;
}

std::string current_variable_scope(const Graph& graph) { return graph.variable_scope.name; }

Reuse current_reuse(const Graph& graph) { return graph.variable_scope.reuse; }

Variable get_variable(Graph& graph, std::string_view name, const VariableOptions& options) {
  if (name.empty()) throw ValueError("get_variable: the variable name is empty");
  const std::string full = join(graph.variable_scope.name, name);
  const Reuse reuse = current_reuse(graph);
  const int id = graph.find_variable(full);
  if (id < 0) {
    if (reuse == Reuse::kTrue) {
      throw ValueError(str("Variable ", full,
                           " does not exist, or was not created with get_variable(). Did you "
                           "mean to set reuse=auto in VariableScope?"));
    }
    return Variable::create(graph, full, options);
  }
  if (reuse == Reuse::kFalse) {
    throw ValueError(str("Variable ", full,
                         " already exists, disallowed. Did you mean to set reuse=true or "
                         "reuse=auto in VariableScope?"));
  }
  const VariableDef& def = graph.variable(id);
  if (!options.shape.is_compatible_with(def.shape)) {
    throw ValueError(str("Trying to share variable ", full, ", but specified shape ", options.shape,
                         " and found shape ", def.shape, "."));
  }
  if (options.dtype != def.dtype) {
    throw ValueError(str("Trying to share variable ", full, ", but specified dtype ", options.dtype,
                         " and found dtype ", def.dtype, "."));
  }
  return Variable(Tensor(&graph, def.handle_node, 0));
}

Tensor get_regularization_loss(Graph& graph, std::string_view scope) {
  const std::vector<Tensor> losses = graph.get_collection(GraphKeys::REGULARIZATION_LOSSES, scope);
  if (losses.empty()) return scalar(graph, 0.0, DType::Float32);
  for (const auto& loss : losses) {
    if (loss.shape().rank() != 0) {
      throw ValueError(str("get_regularization_loss: '", loss.name(), "' has shape ", loss.shape(),
                           "; regularization losses must be scalars"));
    }
    if (loss.dtype() != losses.front().dtype()) {
      throw ValueError(str("get_regularization_loss: '", loss.name(), "' is ", loss.dtype(),
                           " but '", losses.front().name(), "' is ", losses.front().dtype(),
                           "; sum them per dtype with get_collection and cast"));
    }
  }
  if (losses.size() == 1) return identity(losses.front(), "total_regularization_loss");
  return add_n(losses, "total_regularization_loss");
}

}  // namespace ad
