// Internal helpers for the fused in-place update ops of the optimizers (ApplyAdam, ...): recording
// such an op with its checks, and reading its inputs in the kernel. Not part of the public API.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/tensor.h"
#include "autodiff/variable.h"

namespace ad::optim::detail {

// Element loops across threads when large (each element is independent, so the result does not
// depend on the thread count).
using ad::detail::for_each_element;
using ad::detail::kParallelElements;

// The variables an update op changes in place: the variable first, then its slots.
struct ApplyAttrs {
  std::array<int, 4> ids{-1, -1, -1, -1};
  bool flag = false;  // use_nesterov (Momentum, Adam)
};

// Records `op` updating `vars` (the variable, then its slots) with inputs: the handles of `vars`,
// then `scalars` (hyper-parameters, scalars of the variable's dtype), then `grad`. The op has no
// outputs. Optimizer::apply_gradients has already checked grad against the variable, and
// Optimizer::hyper gives scalars of the variable's dtype; only the run-time shapes are left to the
// kernel (checked_grad, scalar_input).
[[nodiscard]] Tensor record_apply(const OpDef& op, std::span<const Variable> vars,
                                  std::span<const Tensor> scalars, const Tensor& grad,
                                  bool flag = false);

// The value of scalar input i as T; InvalidArgumentError when it is not a single value.
template <class T>
[[nodiscard]] T scalar_input(const KernelContext& ctx, int i) {
  const Array& a = ctx.input(i);
  if (a.size() != 1) {
    ctx.fail(str("hyper-parameter input ", i, " must be a scalar, but it has shape ", a.shape()));
  }
  return a.data<T>()[0];
}

// The gradient (the last input), checked against the shape of the variable being updated.
[[nodiscard]] const Array& checked_grad(const KernelContext& ctx);

// Runs f(T{}, arrays) with the op's variables made exclusive (one lock), where arrays[k] is the
// k-th variable of the op (variable first, then slots) and T its element type.
template <std::size_t N, class F>
void with_variables(KernelContext& ctx, F&& f) {
  const auto& attrs = ctx.attrs<ApplyAttrs>();
  std::array<int, N> ids{};
  for (std::size_t k = 0; k < N; ++k) ids[k] = attrs.ids[k];
  const DType dtype = ctx.graph().variable(ids[0]).dtype;
  dispatch_floating(dtype, [&](auto tag) {
    ctx.variables().update(ctx.graph(), ids,
                           [&](const std::array<Array*, N>& arrays) { f(tag, arrays); });
  });
}

}  // namespace ad::optim::detail
