// Scope resolution and bookkeeping shared by the TF1-style layers.
#include "layers/internal/layer_util.h"

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/elementwise.h"

namespace ad::layers::detail {

void open_layer_scope(std::optional<VariableScope>& scope, Graph& graph, bool functional,
                      const std::string& name, Reuse reuse, std::string_view base_name) {
  if (functional && !name.empty()) {
    scope.emplace(graph, name, reuse);
  } else if (functional && reuse != Reuse::kFalse) {
    scope.emplace(graph, base_name, reuse);
  } else {
    const std::string_view base = name.empty() ? base_name : std::string_view(name);
    scope.emplace(graph, VariableScope::DefaultName{base}, reuse);
  }
}

std::size_t num_regularization_losses(const Graph& graph) {
  return graph.get_collection(GraphKeys::REGULARIZATION_LOSSES).size();
}

std::vector<Tensor> losses_since(const Graph& graph, std::size_t before) {
  const auto losses = graph.get_collection(GraphKeys::REGULARIZATION_LOSSES);
  if (before >= losses.size()) return {};
  return {losses.begin() + static_cast<std::ptrdiff_t>(before), losses.end()};
}

Tensor add_activity_loss(const Regularizer& regularizer, const Tensor& outputs) {
  const NameScope scope(outputs.graph(), "ActivityRegularizer");
  const Tensor loss = regularizer(outputs);
  const Tensor batch = cast(slice(shape(outputs), {0}, {1}), loss.dtype());
  const Tensor mean_loss = reshape(loss / batch, Shape{});
  outputs.graph().add_to_collection(GraphKeys::REGULARIZATION_LOSSES, mean_loss);
  return mean_loss;
}

void require_floating(const Tensor& inputs, const std::string& layer) {
  if (!is_floating(inputs.dtype())) {
    throw ValueError(str(layer, ": input '", inputs.name(), "' is ", inputs.dtype(),
                         "; expected float32 or float64 (use ad::cast)"));
  }
}

void require_built_dtype(const Tensor& inputs, DType built, const std::string& layer) {
  if (inputs.dtype() != built) {
    throw ValueError(str(layer, ": input '", inputs.name(), "' is ", inputs.dtype(),
                         " but the layer was built for ", built, " (use ad::cast)"));
  }
}

Tensor div_no_nan(const Tensor& numerator, const Tensor& denominator) {
  const Tensor zero = scalar_like(denominator, 0.0);
  const Tensor is_zero = equal(denominator, zero);
  const Tensor safe = where(is_zero, scalar_like(denominator, 1.0), denominator);
  return where(is_zero, zero, numerator / safe);
}

std::vector<Variable> existing_variables(std::initializer_list<Variable> vars,
                                         bool trainable_only) {
  std::vector<Variable> out;
  for (const auto& v : vars) {
    if (v && (!trainable_only || v.trainable())) out.push_back(v);
  }
  return out;
}

}  // namespace ad::layers::detail
