// while_loop with TF1 semantics, and map_fn, foldl and scan built on it. The condition and body are
// recorded once into a loop context of the graph; a While node runs them, with plans of their own,
// for as many iterations as the condition asks (the body never runs once the condition is false).
// Gradients flow through the loop: the forward loop saves each iteration's loop variables, and the
// gradient is another while loop running a copy of the body and its gradient in reverse.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gradtape/autodiff/shape.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

struct WhileLoopOptions {
  // At most this many iterations (TF's maximum_iterations); unset: no limit.
  std::optional<std::int64_t> maximum_iterations;
  // One shape per loop variable, which its value may take on at every iteration (dims of -1 may
  // change); empty: each variable keeps the static shape it enters with.
  std::vector<Shape> shape_invariants;
  // False: no gradient flows through the loop, and nothing is saved per iteration.
  bool back_prop = true;
  std::string name = "while";
};

using LoopCondFn = std::function<Tensor(const std::vector<Tensor>& loop_vars)>;
using LoopBodyFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& loop_vars)>;

// TF1's tf.while_loop: repeats `loop_vars = body(loop_vars)` while `cond(loop_vars)` (a bool
// scalar) is true, and returns the final loop variables. The body must return as many tensors as
// there are loop variables, each of its variable's dtype and within its shape invariant (ValueError
// naming the loop and the variable when the graph is built, InvalidArgumentError when a run-time
// shape leaves the invariant). Values from outside the loop may be used freely in cond and body;
// tensors created inside cannot be used outside except through the results.
[[nodiscard]] std::vector<Tensor> while_loop(const LoopCondFn& cond, const LoopBodyFn& body,
                                             const std::vector<Tensor>& loop_vars,
                                             const WhileLoopOptions& options = {});

// TF1's tf.map_fn: fn applied to each slice elems[i] along axis 0, results stacked along a new
// axis 0. fn must return tensors of one static shape and dtype; `dtype` defaults to elems'.
[[nodiscard]] Tensor map_fn(const std::function<Tensor(const Tensor&)>& fn, const Tensor& elems,
                            std::optional<DType> dtype = std::nullopt, std::string name = "map");
// TF1's tf.foldl: acc = fn(acc, elems[i]) for i = 0, 1, ...; returns the last acc.
[[nodiscard]] Tensor foldl(const std::function<Tensor(const Tensor&, const Tensor&)>& fn,
                           const Tensor& elems, const Tensor& initializer,
                           std::string name = "foldl");
// TF1's tf.scan: like foldl, but returns every acc stacked along a new axis 0.
[[nodiscard]] Tensor scan(const std::function<Tensor(const Tensor&, const Tensor&)>& fn,
                          const Tensor& elems, const Tensor& initializer,
                          std::string name = "scan");

}  // namespace ad
