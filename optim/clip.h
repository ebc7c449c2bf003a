// Gradient clipping as TF users know it: clip_by_value, clip_by_norm, clip_by_global_norm (and
// global_norm). All are compositions of differentiable ops.
#pragma once

#include <utility>
#include <vector>

#include "gradtape/autodiff/tensor.h"
#include "gradtape/optim/optimizer.h"

namespace ad::optim {

// A bound of clip_by_value: a number, or a tensor that broadcasts to the clipped tensor's shape.
class ClipBound {
 public:
  ClipBound(double value) : number_(value) {}  // NOLINT(google-explicit-constructor)
  ClipBound(Tensor value) : tensor_(value) {}  // NOLINT(google-explicit-constructor)
  // The bound as a tensor of `like`'s dtype (a constant, or the tensor cast when needed).
  [[nodiscard]] Tensor to_tensor_like(const Tensor& like) const;

 private:
  double number_ = 0.0;
  Tensor tensor_;
};

// t with every element clamped to [clip_value_min, clip_value_max]. ValueError when a bound would
// broadcast t to a larger shape.
[[nodiscard]] Tensor clip_by_value(const Tensor& t, const ClipBound& clip_value_min,
                                   const ClipBound& clip_value_max);

// t · clip_norm / max(‖t‖₂, clip_norm), the L2 norm taken over `axes` (all axes when empty): t
// unchanged when its norm is at most clip_norm, else rescaled to norm clip_norm. A zero t has a
// zero gradient (no NaN), as in TF.
[[nodiscard]] Tensor clip_by_norm(const Tensor& t, const Hyperparameter& clip_norm,
                                  const std::vector<int>& axes = {});

// √(Σ over tensors of Σ t²) as a scalar of the first tensor's dtype; empty tensors are skipped.
// ValueError when every tensor is empty.
[[nodiscard]] Tensor global_norm(const std::vector<Tensor>& tensors);

// Every tensor scaled by clip_norm / max(global_norm, clip_norm), and the global norm used
// (`use_norm` when given, else global_norm(tensors)). Empty tensors stay empty; when the norm is
// Inf or NaN every result is NaN, as in TF.
[[nodiscard]] std::pair<std::vector<Tensor>, Tensor> clip_by_global_norm(
    const std::vector<Tensor>& tensors, const Hyperparameter& clip_norm,
    const Tensor& use_norm = {});
// The same for the gradients of (gradient, variable) pairs, ready for apply_gradients.
[[nodiscard]] std::pair<GradsAndVars, Tensor> clip_by_global_norm(
    const GradsAndVars& grads_and_vars, const Hyperparameter& clip_norm,
    const Tensor& use_norm = {});

}  // namespace ad::optim
