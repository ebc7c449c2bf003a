// Internal helpers shared by the TF1-style layers (dense, conv2d, pooling, dropout, flatten): how
// a layer's first call picks its variable scope, and the checks and bookkeeping every layer does.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/graph.h"
#include "autodiff/tensor.h"
#include "autodiff/variable.h"
#include "autodiff/variable_scope.h"

namespace ad::layers::detail {

// Opens the scope of a layer's first call as TF1 layers do: the functional form with a name uses
// that name as is (a second call with the same name and no reuse fails in get_variable, as in TF);
// otherwise the default name (`name`, or `base_name` when empty) is uniquified ("dense",
// "dense_1", ...), except under reuse, which takes it as is.
void open_layer_scope(std::optional<VariableScope>& scope, Graph& graph, bool functional,
                      const std::string& name, Reuse reuse, std::string_view base_name);

// The REGULARIZATION_LOSSES entries added since the collection had `before` entries.
[[nodiscard]] std::vector<Tensor> losses_since(const Graph& graph, std::size_t before);
[[nodiscard]] std::size_t num_regularization_losses(const Graph& graph);

// TF1's activity regularization: regularizer(outputs) / batch size, added to
// REGULARIZATION_LOSSES; returns the loss.
Tensor add_activity_loss(const Regularizer& regularizer, const Tensor& outputs);

// ValueError "<layer>: input '<name>' is <dtype>; expected float32 or float64" unless floating.
void require_floating(const Tensor& inputs, const std::string& layer);

// The variables of `vars` that exist (and, with trainable_only, are trainable), in order: what a
// layer's variables() and trainable_variables() return.
[[nodiscard]] std::vector<Variable> existing_variables(std::initializer_list<Variable> vars,
                                                       bool trainable_only = false);

}  // namespace ad::layers::detail
