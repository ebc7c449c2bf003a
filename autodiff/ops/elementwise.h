// Elementwise ops: NumPy-broadcasting binary arithmetic and comparisons, unary math, cast; the
// activations (activations.h) come with this header. Each records a node; gradients reduce back
// over broadcast axes.
#pragma once

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/ops/activations.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

[[nodiscard]] Tensor add(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor sub(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor mul(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor div(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor maximum(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor minimum(const Tensor& a, const Tensor& b);
// a^b; the gradient for b uses log(a) where a > 0 and 0 elsewhere (as TF).
[[nodiscard]] Tensor pow(const Tensor& a, const Tensor& b);
// (a - b)^2.
[[nodiscard]] Tensor squared_difference(const Tensor& a, const Tensor& b);

// Comparisons give Bool tensors and carry no gradient.
[[nodiscard]] Tensor less(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor less_equal(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor greater(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor greater_equal(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor equal(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor not_equal(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor logical_and(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor logical_or(const Tensor& a, const Tensor& b);
[[nodiscard]] Tensor logical_not(const Tensor& a);

[[nodiscard]] Tensor neg(const Tensor& x);
[[nodiscard]] Tensor abs(const Tensor& x);
[[nodiscard]] Tensor sign(const Tensor& x);
[[nodiscard]] Tensor exp(const Tensor& x);
[[nodiscard]] Tensor log(const Tensor& x);
[[nodiscard]] Tensor sqrt(const Tensor& x);
[[nodiscard]] Tensor rsqrt(const Tensor& x);
[[nodiscard]] Tensor square(const Tensor& x);
// The Gauss error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x.
[[nodiscard]] Tensor erf(const Tensor& x);
[[nodiscard]] Tensor reciprocal(const Tensor& x);

// Converts x to `dtype`; the gradient flows back between floating dtypes only.
[[nodiscard]] Tensor cast(const Tensor& x, DType dtype);

// A scalar constant with x's dtype (for writing formulas: x * scalar_like(x, 0.5)).
[[nodiscard]] Tensor scalar_like(const Tensor& x, double value);

}  // namespace ad
