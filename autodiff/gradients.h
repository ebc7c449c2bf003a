// Reverse mode: gradients are recorded onto the same tape as ordinary nodes, so they can be run,
// pruned and differentiated again.
#pragma once

#include <any>
#include <functional>
#include <span>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

class Variable;

// Something to differentiate with respect to: a Tensor, or a Variable (all of its reads).
class GradTarget {
 public:
  GradTarget(const Tensor& tensor) : tensor_(tensor) {}  // NOLINT(google-explicit-constructor)
  GradTarget(const Variable& variable);                  // NOLINT(google-explicit-constructor)
  [[nodiscard]] const Tensor& tensor() const { return tensor_; }

 private:
  Tensor tensor_;
};

// d(sum of ys, each weighted by its grad_ys entry or ones)/d(x) for each x: one Tensor per x, empty
// where x does not reach any y. Integer and boolean paths carry no gradient.
[[nodiscard]] std::vector<Tensor> gradients(const std::vector<Tensor>& ys,
                                            const std::vector<GradTarget>& xs,
                                            const std::vector<Tensor>& grad_ys = {});
[[nodiscard]] std::vector<Tensor> gradients(const Tensor& y, const std::vector<GradTarget>& xs,
                                            const std::vector<Tensor>& grad_ys = {});

// A hand-written gradient for a recorded composition. `forward(inputs)` records the composition;
// during reverse mode, `gradient(inputs, outputs, grad_outputs)` replaces differentiating through
// it and returns one gradient per input (an empty Tensor for none). A grad_outputs entry is an
// empty Tensor when its output received no gradient (read it as zero). What `gradient` records may
// itself be differentiated.
using CustomGradientFn = std::function<std::vector<Tensor>(
    const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
    const std::vector<Tensor>& grad_outputs)>;
[[nodiscard]] std::vector<Tensor> custom_gradient(
    const std::vector<Tensor>& inputs,
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& forward,
    CustomGradientFn gradient);

// What an op's gradient function sees while reverse mode records its gradient.
class GradContext {
 public:
  GradContext(Graph& graph, int node, std::span<const Tensor> grad_outputs,
              std::span<const char> wants, std::span<Tensor> grad_inputs)
      : graph_(graph),
        node_(node),
        grad_outputs_(grad_outputs),
        wants_(wants),
        grad_inputs_(grad_inputs) {}

  [[nodiscard]] Graph& graph() const { return graph_; }
  [[nodiscard]] const Node& node() const { return graph_.node(node_); }
  [[nodiscard]] int num_inputs() const { return static_cast<int>(node().inputs.size()); }
  [[nodiscard]] Tensor input(int i) const;
  [[nodiscard]] Tensor output(int i = 0) const { return {&graph_, node_, i}; }
  // The gradient arriving at output i; empty when none reached it.
  [[nodiscard]] Tensor grad_output(int i = 0) const {
    return grad_outputs_[static_cast<std::size_t>(i)];
  }
  // Whether input i needs a gradient (it is floating and lies on a path from some x).
  [[nodiscard]] bool wants(int i) const { return wants_[static_cast<std::size_t>(i)] != 0; }
  // Adds `grad` to input i's gradient (ignored when the input does not want one).
  void set(int i, const Tensor& grad);
  template <class A>
  [[nodiscard]] const A& attrs() const {
    return *std::any_cast<A>(&node().attrs);
  }

 private:
  Graph& graph_;
  int node_;
  std::span<const Tensor> grad_outputs_;
  std::span<const char> wants_;
  std::span<Tensor> grad_inputs_;
};

}  // namespace ad
