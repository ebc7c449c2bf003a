// ad::layers::Layer: what every layer object shares, Keras's base Layer reduced to TF1's
// variable-scope model. A layer's first call opens its variable scope (each layer says how:
// functional forms use their name as is, objects a uniquified default name), creates its
// variables there (build) and computes; later calls check the input against what was built and
// compute in the same scope, sharing the variables. The base owns the scope's name, whether the
// layer is built, the list of its variables and the losses made with them; a layer class says how
// to build, check and compute, and which variable slots it has.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/autodiff/variable_scope.h"

namespace ad::layers {

class Layer {
 public:
  virtual ~Layer() = default;

  [[nodiscard]] bool built() const { return built_; }
  // The variable scope of the first call, e.g. "dense_1" or "outer/fc1"; empty before it.
  [[nodiscard]] const std::string& scope_name() const { return scope_name_; }
  // The variables the layer created, in its slot order (slots it did not fill are left out).
  [[nodiscard]] std::vector<Variable> variables() const;
  // Those of them that are trainable.
  [[nodiscard]] std::vector<Variable> trainable_variables() const;
  // The regularization losses created with the variables (and, for layers with an activity
  // regularizer, one per call).
  [[nodiscard]] const std::vector<Tensor>& losses() const { return losses_; }

 protected:
  Layer() = default;
  Layer(const Layer&) = default;
  Layer& operator=(const Layer&) = default;
  Layer(Layer&&) = default;
  Layer& operator=(Layer&&) = default;

  // Opens the layer's variable scope for its first call.
  using ScopeOpener = std::function<void(std::optional<VariableScope>& scope, Graph& graph)>;

  // One call: the first opens the scope with `open`, records its name, runs build(inputs) and
  // then `body` inside it, and marks the layer built; later calls run check_input(inputs), then
  // `body` under the recorded scope's name (its variables exist, so no variable scope is opened).
  Tensor call_in_scope(const Tensor& inputs, const ScopeOpener& open,
                       const std::function<Tensor()>& body);
  // For a layer that opens and re-enters its scope itself: its first call is done.
  void mark_built(std::string scope_name);
  [[nodiscard]] std::vector<Tensor>& mutable_losses() { return losses_; }

 private:
  // Creates the variables in the open scope (the first call only).
  virtual void build(const Tensor& inputs) { (void)inputs; }
  // Checks a later call's input against what was built (rank, feature sizes, dtype).
  virtual void check_input(const Tensor& inputs) const { (void)inputs; }
  // Every variable slot of the layer, unfilled ones as empty Variables.
  [[nodiscard]] virtual std::vector<Variable> variable_slots() const = 0;
  // The slots trainable_variables() looks at (default: all of them).
  [[nodiscard]] virtual std::vector<Variable> trainable_slots() const { return variable_slots(); }

  bool built_ = false;
  std::string scope_name_;
  std::vector<Tensor> losses_;
};

}  // namespace ad::layers
