// DistributedOptimizer's bucketed gradient reduction, broadcast_variables and share_of_global_mean.
#include "distributed/optimizer.h"

#include <utility>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "distributed/communicator.h"

namespace ad::distributed {

DistributedOptimizer::DistributedOptimizer(std::unique_ptr<optim::Optimizer> optimizer,
                                           DistributedOptimizerOptions options)
    : optimizer_(std::move(optimizer)), options_(options) {
  if (!optimizer_) throw ValueError("DistributedOptimizer: the wrapped optimizer is null");
  if (options_.fusion_bytes < 1) {
    throw ValueError(str("DistributedOptimizer: fusion_bytes is ", options_.fusion_bytes,
                         ", it must be at least 1"));
  }
}

optim::GradsAndVars DistributedOptimizer::compute_gradients(const Tensor& loss,
                                                            const std::vector<Variable>& var_list) {
  return reduce_gradients(optimizer_->compute_gradients(loss, var_list));
}

optim::GradsAndVars DistributedOptimizer::reduce_gradients(
    const optim::GradsAndVars& grads_and_vars) {
  optim::GradsAndVars reduced = grads_and_vars;
  num_buckets_ = 0;
  std::vector<std::size_t> bucket;  // indices into `reduced`
  std::int64_t bucket_bytes = 0;
  const auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<Tensor> grads;
    for (const auto i : bucket) grads.push_back(reduced[i].first);
    const auto sums = grouped_allreduce(grads, options_.op, "DistributedOptimizer/Allreduce");
    for (std::size_t k = 0; k < bucket.size(); ++k) reduced[bucket[k]].first = sums[k];
    ++num_buckets_;
    bucket.clear();
    bucket_bytes = 0;
  };
  for (std::size_t i = 0; i < reduced.size(); ++i) {
    const Tensor& grad = reduced[i].first;
    if (!grad) continue;
    const Variable& var = reduced[i].second;
    const std::int64_t bytes =
        var.shape().num_elements() * static_cast<std::int64_t>(dtype_size(grad.dtype()));
    const bool same_dtype = bucket.empty() || reduced[bucket.front()].first.dtype() == grad.dtype();
    if (!same_dtype || bucket_bytes + bytes > options_.fusion_bytes) flush();
    bucket.push_back(i);
    bucket_bytes += bytes;
  }
  flush();
  return reduced;
}

Tensor DistributedOptimizer::apply_gradients(const optim::GradsAndVars& grads_and_vars,
                                             std::optional<Variable> global_step,
                                             std::string_view name) {
  return optimizer_->apply_gradients(grads_and_vars, std::move(global_step), name);
}

Tensor DistributedOptimizer::minimize(const Tensor& loss, std::optional<Variable> global_step,
                                      const std::vector<Variable>& var_list,
                                      std::string_view name) {
  return apply_gradients(compute_gradients(loss, var_list), std::move(global_step), name);
}

Tensor broadcast_variables(Graph& graph, int root, const std::vector<Variable>& variables) {
  const std::vector<Variable> vars = variables.empty() ? global_variables(graph) : variables;
  if (vars.empty()) throw ValueError("broadcast_variables: the graph has no variables");
  std::vector<Tensor> values;
  for (const Variable& var : vars) values.push_back(var.value());
  const auto received = grouped_broadcast(values, root, "broadcast_variables");
  std::vector<Tensor> assigns;
  for (std::size_t i = 0; i < vars.size(); ++i) assigns.push_back(vars[i].assign(received[i]));
  return group(assigns, "broadcast_variables/group");
}

Tensor share_of_global_mean(const Tensor& x) {
  if (!x || x.is_op() || !is_floating(x.dtype())) {
    throw ValueError("share_of_global_mean: x must be a floating tensor");
  }
  const Tensor count = reduce_sum(ones_like(x));
  const Tensor global_count = stop_gradient(allreduce(count, ReduceOp::kSum, "global_count"));
  return reduce_sum(x) / global_count;
}

}  // namespace ad::distributed
