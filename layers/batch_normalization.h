// TF r2.4's tf.compat.v1.layers.batch_normalization and its class form BatchNormalization, with
// every argument. docs/batch_normalization.md describes the semantics followed and the paths a
// configuration can take.
//
// Update rule (TF's convention, not PyTorch's): `momentum` weights the OLD statistic,
//   moving_mean     <- moving_mean     - (moving_mean     - batch_mean)     * (1 - momentum)
//   moving_variance <- moving_variance - (moving_variance - batch_variance) * (1 - momentum)
// The updates are ops in the UPDATE_OPS collection: they run only when fetched, usually grouped
// with the train op.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gradtape/autodiff/control.h"
#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/number_or_tensor.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/autodiff/variable_scope.h"
#include "gradtape/layers/layer.h"

namespace ad {
class Session;
}

namespace ad::layers {

// One feature axis or a list of them (`.axis = 1` or `.axis = {1, 2}`); negative counts from the
// end.
class AxisList {
 public:
  AxisList(int axis) : axes_{axis} {}                         // NOLINT(google-explicit-constructor)
  AxisList(std::initializer_list<int> axes) : axes_(axes) {}  // NOLINT(google-explicit-constructor)
  AxisList(std::vector<int> axes)
      : axes_(std::move(axes)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] const std::vector<int>& axes() const { return axes_; }

 private:
  std::vector<int> axes_;
};

// A number fixed when the graph is built, or a scalar Tensor fed or computed at run time.
using ScalarArg = NumberOrTensor;

// Called once per layer call in training with the input's run-time shape (1-D Int64); returns
// (scale, bias) that broadcast against the input (TF's `adjustment`).
using Adjustment = std::function<std::pair<Tensor, Tensor>(const Tensor& input_shape)>;

// TF's arguments in TF's order with TF's defaults (initializers default to zeros for beta and
// moving_mean, ones for gamma and moving_variance).
struct BatchNormalizationOptions {
  AxisList axis = -1;
  ScalarArg momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;
  bool scale = true;
  Initializer beta_initializer{};
  Initializer gamma_initializer{};
  Initializer moving_mean_initializer{};
  Initializer moving_variance_initializer{};
  Regularizer beta_regularizer{};
  Regularizer gamma_regularizer{};
  Constraint beta_constraint{};
  Constraint gamma_constraint{};
  Predicate training = false;  // a bool, or a boolean scalar Tensor
  bool trainable = true;
  std::string name{};
  Reuse reuse = Reuse::kFalse;
  bool renorm = false;
  std::map<std::string, ScalarArg> renorm_clipping{};  // keys "rmin", "rmax", "dmax"
  double renorm_momentum = 0.99;
  std::optional<bool> fused{};  // unset or true: fused when TF would; false: never
  std::optional<std::int64_t> virtual_batch_size{};
  Adjustment adjustment{};
  // Keras's SyncBatchNormalization: in training, the mean and variance over the global batch of
  // all processes (each contributes its count, mean and M2, merged in rank order in double), taken
  // through the collectives ad::distributed::init() registers. Unless fused=false (or with renorm
  // or adjustment, which take the composed path as in one process), the gradient is hand-written
  // (nn::synchronized_batch_norm: two per-channel sums all-reduced); renorm and adjustment see the
  // global statistics, and the moving statistics are the same on every process. TF's fused-kernel
  // conventions (unbiased moving variance, epsilon >= 1.001e-5) never apply, as in Keras.
  // Without init() it is a ValueError; with virtual_batch_size too. A training run in which
  // every process's batch is empty is an InvalidArgumentError (nothing to average).
  bool synchronized = false;
};

// What the first call resolved, so users can see which path a configuration took.
struct BatchNormalizationConfig {
  std::vector<int> axes;            // resolved, sorted
  std::vector<int> reduction_axes;  // of the (possibly virtual-batch-reshaped) input
  bool tf_fused = false;  // TF r2.4 would use its fused kernel (4-D, axis 1 or 3, float32, ...)
  bool fused_gradient = false;  // the hand-written gradient is attached
  double epsilon = 0;           // effective: raised to 1.001e-5 when tf_fused
  Shape param_shape;            // shape of gamma, beta and the moving statistics
  Shape broadcast_shape;        // parameters reshaped to broadcast against the input
  DType dtype = DType::Float32;
  int rank = 0;
};

class BatchNormalization : public Layer {
 public:
  // The class form; `options.training` is the default for calls that do not pass one.
  explicit BatchNormalization(BatchNormalizationOptions options = {});

  // Normalizes `inputs`; builds the variables on the first call. Later calls share them and must
  // have the same rank and feature sizes.
  Tensor operator()(const Tensor& inputs, std::optional<Predicate> training = {});
  Tensor apply(const Tensor& inputs, std::optional<Predicate> training = {}) {
    return (*this)(inputs, training);
  }

  [[nodiscard]] const BatchNormalizationConfig& config() const;

  // Variables (empty Variable when not created: gamma without scale, beta without center, the
  // renorm ones without renorm).
  [[nodiscard]] Variable gamma() const { return gamma_; }
  [[nodiscard]] Variable beta() const { return beta_; }
  [[nodiscard]] Variable moving_mean() const { return moving_mean_; }
  [[nodiscard]] Variable moving_variance() const { return moving_variance_; }
  [[nodiscard]] Variable moving_stddev() const { return moving_stddev_; }
  [[nodiscard]] Variable renorm_mean() const { return renorm_mean_; }
  [[nodiscard]] Variable renorm_stddev() const { return renorm_stddev_; }
  // variables() (all seven slots), trainable_variables() (gamma and beta), losses() (the
  // regularization losses created with the variables), built() and scope_name(), e.g.
  // "batch_normalization_1" or "outer/bn": see Layer.

  // The update ops of all calls so far (empty for a non-trainable layer, as in TF).
  [[nodiscard]] std::vector<Tensor> updates() const;

 private:
  friend Tensor batch_normalization(const Tensor& inputs, const BatchNormalizationOptions& options);
  struct MovingStatistics;
  struct TrainingOutput;
  void build(const Tensor& inputs) override;
  [[nodiscard]] std::vector<int> resolve_axes(const Tensor& inputs) const;
  void check_virtual_batch(const Tensor& inputs, const std::vector<int>& axes) const;
  void configure(const Tensor& inputs, const std::vector<int>& axes);
  void create_variables(Graph& graph, DType dtype);
  void check_input(const Tensor& inputs) const override;
  [[nodiscard]] std::vector<Variable> variable_slots() const override;
  [[nodiscard]] std::vector<Variable> trainable_slots() const override { return {gamma_, beta_}; }
  void check_scalar_args(const Tensor& inputs) const;
  void check_adjustment(const Tensor& inputs, const Tensor& t, const char* what) const;
  Tensor call(const Tensor& inputs, const Predicate& training);
  [[nodiscard]] Tensor param(const Variable& v) const;  // reshaped to broadcast against x
  [[nodiscard]] Tensor inference(const Tensor& x) const;
  [[nodiscard]] TrainingOutput train(const Tensor& inputs, const Tensor& x) const;
  [[nodiscard]] TrainingOutput train_composed(const Tensor& inputs, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta) const;
  [[nodiscard]] std::pair<Tensor, Tensor> renorm_correction(const Tensor& stat_mean,
                                                            const Tensor& stat_variance,
                                                            const Tensor& scale,
                                                            const Tensor& offset) const;
  [[nodiscard]] MovingStatistics moving_averages(const TrainingOutput& batch,
                                                 const Tensor& x) const;
  [[nodiscard]] MovingStatistics current_moving_statistics() const;
  void add_updates(Graph& graph, const MovingStatistics& moving);

  BatchNormalizationOptions options_;
  bool functional_ =
      false;  // created by batch_normalization(): the name is the scope, never uniquified
  BatchNormalizationConfig config_;
  Shape input_shape_;
  Variable gamma_, beta_, moving_mean_, moving_variance_, moving_stddev_, renorm_mean_,
      renorm_stddev_;
  std::vector<Tensor> updates_;
};

// tf.compat.v1.layers.batch_normalization: a new layer per call, with TF1 name/reuse semantics;
// `batch_normalization(x, {.axis = 1, .momentum = 0.9, .training = is_training})`.
[[nodiscard]] Tensor batch_normalization(const Tensor& inputs,
                                         const BatchNormalizationOptions& options = {});

// Update ops that a session never ran although it ran a train op: the classic TF1 mistake of
// forgetting to group UPDATE_OPS with the train op. Empty when all is well.
struct UpdateOpsReport {
  std::vector<Tensor> never_run;  // UPDATE_OPS entries with a run count of 0
  bool train_op_ran = false;      // some TRAIN_OP entry ran in this session
  std::string message;            // a readable summary, empty when nothing is wrong
};
[[nodiscard]] UpdateOpsReport check_update_ops(const Session& session, const Graph& graph);

}  // namespace ad::layers
