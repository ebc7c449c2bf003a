// Internal helpers shared by the TF1-style layers (dense, conv2d, pooling, dropout, flatten), the
// losses and the metrics: how a layer's first call picks its variable scope, its kernel and bias,
// and the checks and bookkeeping every layer does.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/graph.h"
#include "autodiff/initializers.h"
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

// The variables of a dense or convolution layer, and the regularization losses made with them.
struct KernelAndBias {
  Variable kernel;
  Variable bias;  // empty without use_bias
  std::vector<Tensor> losses;
};

// Creates (or, under reuse, fetches) `kernel` shaped `kernel_shape` and, with use_bias, `bias`
// shaped like its last dim, in the current variable scope. `options` is a DenseOptions or
// Conv2DOptions: their kernel_* / bias_* fields, use_bias and trainable; empty initializers mean
// glorot_uniform for the kernel and zeros for the bias, as TF1's layers.
template <class LayerOptions>
[[nodiscard]] KernelAndBias create_kernel_and_bias(Graph& graph, const Shape& kernel_shape,
                                                   DType dtype, const LayerOptions& options) {
  const std::size_t losses_before = num_regularization_losses(graph);
  KernelAndBias out;
  out.kernel =
      get_variable(graph, "kernel",
                   {.shape = kernel_shape,
                    .dtype = dtype,
                    .initializer = options.kernel_initializer ? options.kernel_initializer
                                                              : initializers::glorot_uniform(),
                    .regularizer = options.kernel_regularizer,
                    .constraint = options.kernel_constraint,
                    .trainable = options.trainable});
  if (options.use_bias) {
    out.bias = get_variable(
        graph, "bias",
        {.shape = Shape{kernel_shape[kernel_shape.rank() - 1]},
         .dtype = dtype,
         .initializer = options.bias_initializer ? options.bias_initializer : initializers::zeros(),
         .regularizer = options.bias_regularizer,
         .constraint = options.bias_constraint,
         .trainable = options.trainable});
  }
  out.losses = losses_since(graph, losses_before);
  return out;
}

// TF1's activity regularization: regularizer(outputs) / batch size, added to
// REGULARIZATION_LOSSES; returns the loss.
Tensor add_activity_loss(const Regularizer& regularizer, const Tensor& outputs);

// ValueError "<layer>: input '<name>' is <dtype>; expected float32 or float64" unless floating.
void require_floating(const Tensor& inputs, const std::string& layer);
// ValueError "<layer>: input '<name>' is <dtype> but the layer was built for <built>" unless equal.
void require_built_dtype(const Tensor& inputs, DType built, const std::string& layer);

// numerator / denominator, or 0 where the denominator is 0 (TF's div_no_nan); the division sees a
// denominator of 1 there, so no NaN reaches a gradient.
[[nodiscard]] Tensor div_no_nan(const Tensor& numerator, const Tensor& denominator);

// The variables of `vars` that exist (and, with trainable_only, are trainable), in order: what a
// layer's variables() and trainable_variables() return.
[[nodiscard]] std::vector<Variable> existing_variables(std::initializer_list<Variable> vars,
                                                       bool trainable_only = false);

}  // namespace ad::layers::detail
