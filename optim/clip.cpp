// Gradient clipping, composed from elementwise ops and reductions following TF r2.4's clip_ops.py
// (same formulas, so values and gradients match TF's).
#include "optim/clip.h"

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"

namespace ad::optim {

namespace {

void check_floating(const Tensor& t, std::string_view what) {
  if (!t || t.is_op()) throw ValueError(str(what, ": the input is not a tensor"));
  if (!is_floating(t.dtype())) {
    throw ValueError(str(what, ": '", t.name(), "' is ", t.dtype(), "; it must be floating"));
  }
}

}  // namespace

Tensor ClipBound::to_tensor_like(const Tensor& like) const {
  if (!tensor_) return scalar(like.graph(), number_, like.dtype());
  return tensor_.dtype() == like.dtype() ? tensor_ : cast(tensor_, like.dtype());
}

Tensor clip_by_value(const Tensor& t, const ClipBound& clip_value_min,
                     const ClipBound& clip_value_max) {
  check_floating(t, "clip_by_value");
  const NameScope scope(t.graph(), "clip_by_value");
  const Tensor t_min = minimum(t, clip_value_max.to_tensor_like(t));
  const Tensor t_max = maximum(t_min, clip_value_min.to_tensor_like(t));
  if (!t_max.shape().is_compatible_with(t.shape()) || t_max.shape().rank() != t.shape().rank()) {
    throw ValueError(str("clip_by_value: clipping '", t.name(), "' of shape ", t.shape(),
                         " would broadcast it to ", t_max.shape(),
                         "; the bounds must be scalars or broadcast to t's shape"));
  }
  return t_max;
}

Tensor clip_by_norm(const Tensor& t, const Hyperparameter& clip_norm,
                    const std::vector<int>& axes) {
  check_floating(t, "clip_by_norm");
  const NameScope scope(t.graph(), "clip_by_norm");
  const Tensor norm_limit = clip_norm.to_tensor(t.graph(), t.dtype());
  const Tensor l2sum = reduce_sum(t * t, axes, /*keepdims=*/true);
  // sqrt has an infinite derivative at 0: take it of 1 where the sum is 0, as TF does, so a zero
  // t gets a zero gradient instead of NaN.
  const Tensor positive = greater(l2sum, scalar_like(l2sum, 0.0));
  const Tensor l2sum_safe = where(positive, l2sum, ones_like(l2sum));
  const Tensor l2norm = where(positive, sqrt(l2sum_safe), l2sum);
  return identity(t * norm_limit / maximum(l2norm, norm_limit));
}

Tensor global_norm(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> squared_sums;
  DType dtype = DType::Float32;
  for (const auto& t : tensors) {
    if (!t) continue;
    check_floating(t, "global_norm");
    if (squared_sums.empty()) dtype = t.dtype();
    const Tensor sum = reduce_sum(square(t));
    squared_sums.push_back(sum.dtype() == dtype ? sum : cast(sum, dtype));
  }
  if (squared_sums.empty()) throw ValueError("global_norm: every tensor is empty");
  const NameScope scope(squared_sums.front().graph(), "global_norm");
  return sqrt(squared_sums.size() == 1 ? squared_sums.front() : add_n(squared_sums));
}

std::pair<std::vector<Tensor>, Tensor> clip_by_global_norm(const std::vector<Tensor>& tensors,
                                                           const Hyperparameter& clip_norm,
                                                           const Tensor& use_norm) {
  const Tensor norm = use_norm ? use_norm : global_norm(tensors);
  check_floating(norm, "clip_by_global_norm");
  if (!norm.shape().is_compatible_with(Shape{})) {
    throw ValueError(str("clip_by_global_norm: use_norm '", norm.name(), "' must be a scalar, not ",
                         norm.shape()));
  }
  const NameScope scope(norm.graph(), "clip_by_global_norm");
  const Tensor limit = clip_norm.to_tensor(norm.graph(), norm.dtype());
  // (norm - norm) is NaN exactly when the norm is Inf or NaN, which then poisons every result.
  // NOLINTNEXTLINE(misc-redundant-expression): the subtraction is meant
  const Tensor scale = limit * minimum(reciprocal(norm), reciprocal(limit)) + (norm - norm);
  std::vector<Tensor> clipped;
  for (const auto& t : tensors) {
    if (!t) {
      clipped.emplace_back();
      continue;
    }
    check_floating(t, "clip_by_global_norm");
    clipped.push_back(identity(t * (t.dtype() == scale.dtype() ? scale : cast(scale, t.dtype()))));
  }
  return {clipped, norm};
}

std::pair<GradsAndVars, Tensor> clip_by_global_norm(const GradsAndVars& grads_and_vars,
                                                    const Hyperparameter& clip_norm,
                                                    const Tensor& use_norm) {
  std::vector<Tensor> grads;
  for (const auto& [grad, var] : grads_and_vars) grads.push_back(grad);
  auto [clipped, norm] = clip_by_global_norm(grads, clip_norm, use_norm);
  GradsAndVars out;
  for (std::size_t i = 0; i < grads_and_vars.size(); ++i) {
    out.emplace_back(clipped[i], grads_and_vars[i].second);
  }
  return {out, norm};
}

}  // namespace ad::optim
