// Data-parallel training (Horovod's model): DistributedOptimizer averages the gradients across
// ranks in buckets before the wrapped optimizer's update; broadcast_variables gives every rank the
// root's initial values; share_of_global_mean makes a loss exact when per-rank batch sizes differ.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/distributed/collectives.h"
#include "gradtape/optim/optimizer.h"

namespace ad {
class Graph;
}

namespace ad::distributed {

struct DistributedOptimizerOptions {
  // kMean: the gradient of the mean of the ranks' losses (each rank's loss a mean over its own
  // batch of equal size: the same as one process with the whole batch). kSum: of their sum (with
  // share_of_global_mean losses: exact for any per-rank batch sizes, including empty ones).
  ReduceOp op = ReduceOp::kMean;
  // The fusion buffer: consecutive gradients of one dtype are reduced in one message of at most
  // this many bytes (a larger gradient travels alone). Horovod's default threshold, 64 MiB.
  std::int64_t fusion_bytes = std::int64_t{64} << 20;
};

// Wraps any optimizer: compute_gradients returns the wrapped optimizer's gradients reduced across
// ranks; apply_gradients is the wrapped optimizer's (its update, then each variable's constraint).
// The reduced gradients are bitwise identical on every rank, so with identical initial values
// (broadcast_variables) every variable stays bitwise identical on every rank after every step.
class DistributedOptimizer {
 public:
  explicit DistributedOptimizer(std::unique_ptr<optim::Optimizer> optimizer,
                                DistributedOptimizerOptions options = {});

  // The wrapped optimizer's pairs, with each gradient replaced by its cross-rank reduction.
  [[nodiscard]] optim::GradsAndVars compute_gradients(const Tensor& loss,
                                                      const std::vector<Variable>& var_list = {});
  // The gradients of `grads_and_vars` reduced across ranks in buckets (empty ones stay empty).
  [[nodiscard]] optim::GradsAndVars reduce_gradients(const optim::GradsAndVars& grads_and_vars);
  // The wrapped optimizer's apply_gradients.
  Tensor apply_gradients(const optim::GradsAndVars& grads_and_vars,
                         std::optional<Variable> global_step = {}, std::string_view name = {});
  // compute_gradients then apply_gradients.
  Tensor minimize(const Tensor& loss, std::optional<Variable> global_step = {},
                  const std::vector<Variable>& var_list = {}, std::string_view name = {});

  [[nodiscard]] optim::Optimizer& optimizer() { return *optimizer_; }
  [[nodiscard]] const DistributedOptimizerOptions& options() const { return options_; }
  // Number of allreduce messages the last reduce_gradients recorded.
  [[nodiscard]] int num_buckets() const { return num_buckets_; }

 private:
  std::unique_ptr<optim::Optimizer> optimizer_;
  DistributedOptimizerOptions options_;
  int num_buckets_ = 0;
};

// An op assigning to every variable of `variables` (default: the graph's GLOBAL_VARIABLES) the
// root's value, in one message; run it once after the initializer.
[[nodiscard]] Tensor broadcast_variables(Graph& graph, int root = 0,
                                         const std::vector<Variable>& variables = {});

// This rank's share of the mean of the per-example values `x` over the global batch:
// reduce_sum(x) / N with N the number of elements of x summed over the ranks. The shares sum to
// the global mean, so with DistributedOptimizerOptions{.op = ReduceOp::kSum} training equals one
// process with the whole batch even when the ranks hold different numbers of examples (or none).
[[nodiscard]] Tensor share_of_global_mean(const Tensor& x);

}  // namespace ad::distributed
