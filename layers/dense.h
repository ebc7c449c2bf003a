// tf.compat.v1.layers.dense and its class form Dense: outputs = activation(inputs . kernel + bias),
// with TF1 variable scopes, reuse, regularization losses and the glorot_uniform default.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/autodiff/variable_scope.h"
#include "gradtape/layers/layer.h"

namespace ad::layers {

// An activation applied to a layer's output; empty means linear (`.activation = ad::relu`).
using Activation = std::function<Tensor(const Tensor&)>;

// TF's arguments in TF's order with TF's defaults.
struct DenseOptions {
  Activation activation{};
  bool use_bias = true;
  Initializer kernel_initializer{};  // empty: glorot_uniform, as TF1's get_variable
  Initializer bias_initializer{};    // empty: zeros
  Regularizer kernel_regularizer{};
  Regularizer bias_regularizer{};
  // Applied to the output; regularizer(output) / batch size goes to REGULARIZATION_LOSSES.
  Regularizer activity_regularizer{};
  Constraint kernel_constraint{};
  Constraint bias_constraint{};
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
};

class Dense : public Layer {
 public:
  // The class form: `units` output features; the variables are created by the first call.
  explicit Dense(std::int64_t units, DenseOptions options = {});

  // inputs [..., in] (rank >= 2, `in` known) -> [..., units]; rank > 2 applies the kernel on the
  // last axis, as TF's tensordot. Later calls share the variables and need the same `in`.
  Tensor operator()(const Tensor& inputs);
  Tensor apply(const Tensor& inputs) { return (*this)(inputs); }

  [[nodiscard]] std::int64_t units() const { return units_; }
  // `<scope>/kernel` [in, units] and `<scope>/bias` [units] (empty Variable without use_bias).
  [[nodiscard]] Variable kernel() const { return kernel_; }
  [[nodiscard]] Variable bias() const { return bias_; }
  // variables(), trainable_variables(), losses() (the regularization losses created with the
  // variables, and the activity losses of all calls), built() and scope_name(): see Layer.

 private:
  friend Tensor dense(const Tensor& inputs, std::int64_t units, const DenseOptions& options);
  void build(const Tensor& inputs) override;
  void check_input(const Tensor& inputs) const override;
  [[nodiscard]] std::vector<Variable> variable_slots() const override { return {kernel_, bias_}; }
  Tensor call(const Tensor& inputs);

  std::int64_t units_;
  DenseOptions options_;
  bool functional_ = false;  // created by dense(): the name is the scope, never uniquified
  std::int64_t input_dim_ = 0;
  DType dtype_ = DType::Float32;
  Variable kernel_, bias_;
};

// tf.compat.v1.layers.dense: a new layer per call with TF1 name/reuse semantics;
// `dense(x, 128, {.activation = ad::relu, .name = "fc1"})`.
[[nodiscard]] Tensor dense(const Tensor& inputs, std::int64_t units,
                           const DenseOptions& options = {});

}  // namespace ad::layers
