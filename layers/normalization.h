// Layer, group and instance normalization, the per-example members of the normalization family
// (batch normalization is in batch_normalization.h): Keras's LayerNormalization and
// GroupNormalization and TF Addons' InstanceNormalization, with their argument names, order and
// defaults. Each normalizes every example on its own (no moving statistics, the same computation
// in training and inference), then applies gamma and beta:
//   y = (x - mean) * rsqrt(variance + epsilon) * gamma + beta
// with the mean and biased variance over
//   - layer norm: the `axis` dims (gamma and beta are shaped like them);
//   - group norm: every dim but the batch (0), within each of `groups` groups of the `axis`
//     channels (gamma and beta: [channels]);
//   - instance norm: every dim but the batch and the `axis` channel (group norm with one group per
//     channel).
// Variables are created under the layer's variable scope (TF1 names and reuse, like dense):
// "gamma" (scale), "beta" (center). The forward pass is composed from ad::nn::normalize; with
// `fused` (the default) its gradient is the hand-written one.
#pragma once

#include <string>
#include <vector>

#include "gradtape/autodiff/initializers.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/autodiff/variable_scope.h"
#include "gradtape/layers/batch_normalization.h"
#include "gradtape/layers/layer.h"

namespace ad::layers {

// Keras's LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True, ...).
struct LayerNormalizationOptions {
  AxisList axis = -1;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer{};   // zeros
  Initializer gamma_initializer{};  // ones
  Regularizer beta_regularizer{};
  Regularizer gamma_regularizer{};
  Constraint beta_constraint{};
  Constraint gamma_constraint{};
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
  bool fused = true;  // the hand-written gradient; false: differentiate the composition
};

// Keras's GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, ...).
// `groups` must divide the channels; -1 means one group per channel (instance normalization).
struct GroupNormalizationOptions {
  int groups = 32;
  int axis = -1;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer{};
  Initializer gamma_initializer{};
  Regularizer beta_regularizer{};
  Regularizer gamma_regularizer{};
  Constraint beta_constraint{};
  Constraint gamma_constraint{};
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
  bool fused = true;
};

// TF Addons' InstanceNormalization(axis=-1, epsilon=1e-3, center=True, scale=True, ...).
struct InstanceNormalizationOptions {
  int axis = -1;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer{};
  Initializer gamma_initializer{};
  Regularizer beta_regularizer{};
  Regularizer gamma_regularizer{};
  Constraint beta_constraint{};
  Constraint gamma_constraint{};
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
  bool fused = true;
};

// Each returns the normalized inputs (same shape and dtype, Float32 or Float64). Errors
// (ValueError, naming the layer): an axis out of range or repeated, an unknown size on a
// normalized or channel axis, channels not divisible by groups.
[[nodiscard]] Tensor layer_normalization(const Tensor& inputs,
                                         const LayerNormalizationOptions& options = {});
[[nodiscard]] Tensor group_normalization(const Tensor& inputs,
                                         const GroupNormalizationOptions& options = {});
[[nodiscard]] Tensor instance_normalization(const Tensor& inputs,
                                            const InstanceNormalizationOptions& options = {});

// The class forms (Keras's objects): the first call creates gamma and beta under the layer's
// scope ("layer_normalization", "layer_normalization_1", ... or the options' name); later calls,
// on other inputs, share them (same normalized sizes: ValueError otherwise, from get_variable).
class NormalizationLayer : public Layer {
 public:
  NormalizationLayer(const NormalizationLayer&) = delete;
  NormalizationLayer& operator=(const NormalizationLayer&) = delete;
  NormalizationLayer(NormalizationLayer&&) = default;
  NormalizationLayer& operator=(NormalizationLayer&&) = default;
  virtual ~NormalizationLayer() = default;

  // The normalized inputs, as the functional form returns them.
  Tensor operator()(const Tensor& inputs);
  Tensor apply(const Tensor& inputs) { return (*this)(inputs); }

  // Empty Variable before the first call, and without scale (gamma) or center (beta).
  [[nodiscard]] Variable gamma() const { return gamma_; }
  [[nodiscard]] Variable beta() const { return beta_; }
  // variables(), trainable_variables(), built() and scope_name(), e.g. "layer_normalization_1"
  // or "outer/ln": see Layer.

 protected:
  NormalizationLayer(std::string name, Reuse reuse, const char* base_name, int min_rank,
                     bool center, bool scale);

 private:
  // The layer's computation inside its open variable scope `scope`.
  virtual Tensor call(const Tensor& inputs, const std::string& scope) = 0;
  [[nodiscard]] std::vector<Variable> variable_slots() const override { return {gamma_, beta_}; }

  std::string name_;
  Reuse reuse_;
  const char* base_name_;
  int min_rank_;
  bool center_;
  bool scale_;
  const Graph* graph_ = nullptr;
  Variable gamma_;
  Variable beta_;
};

class LayerNormalization : public NormalizationLayer {
 public:
  explicit LayerNormalization(LayerNormalizationOptions options = {});

 private:
  Tensor call(const Tensor& inputs, const std::string& scope) override;
  LayerNormalizationOptions options_;
};

class GroupNormalization : public NormalizationLayer {
 public:
  explicit GroupNormalization(GroupNormalizationOptions options = {});

 private:
  Tensor call(const Tensor& inputs, const std::string& scope) override;
  GroupNormalizationOptions options_;
};

class InstanceNormalization : public NormalizationLayer {
 public:
  explicit InstanceNormalization(InstanceNormalizationOptions options = {});

 private:
  Tensor call(const Tensor& inputs, const std::string& scope) override;
  InstanceNormalizationOptions options_;
};

}  // namespace ad::layers
