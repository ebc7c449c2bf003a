#include "layers/layer.h"

#include <utility>

namespace ad::layers {
namespace {

std::vector<Variable> existing(const std::vector<Variable>& slots, bool trainable_only) {
  std::vector<Variable> out;
  for (const auto& v : slots) {
    if (v && (!trainable_only || v.trainable())) out.push_back(v);
  }
  return out;
}

}  // namespace

std::vector<Variable> Layer::variables() const { return existing(variable_slots(), false); }

std::vector<Variable> Layer::trainable_variables() const {
  return existing(trainable_slots(), true);
}

Tensor Layer::call_in_scope(const Tensor& inputs, const ScopeOpener& open,
                            const std::function<Tensor()>& body) {
  Graph& graph = inputs.graph();
  if (!built_) {
    std::optional<VariableScope> scope;
    open(scope, graph);
    scope_name_ = scope->name();
    build(inputs);
    built_ = true;
    return body();
  }
  check_input(inputs);
  const NameScope root(graph, "/");
  const NameScope scope(graph, scope_name_);
  return body();
}

void Layer::mark_built(std::string scope_name) {
  built_ = true;
  scope_name_ = std::move(scope_name);
}

}  // namespace ad::layers
