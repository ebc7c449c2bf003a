// The per-iteration record a differentiable While node keeps (for autodiff/while_loop.cpp): each
// loop variable's values at the start of every iteration, concatenated in one flat tensor, and one
// Int64 tensor of their offsets and shapes. TraceRead picks iteration t's value back out.
#pragma once

#include <cstdint>

#include "gradtape/autodiff/tensor.h"

namespace ad::detail {

// Where loop variable `var` sits in the shapes record: per iteration, `stride` entries; the
// variable's own are [offset into its flat trace, dims...] starting at `base`.
struct TraceLayout {
  int rank = 0;
  int base = 0;
  int stride = 0;
};

// Iteration t's value (t: Int64 scalar) of the variable laid out by `layout`, whose static shape is
// `shape`. Differentiable with respect to `trace`.
[[nodiscard]] Tensor trace_read(const Tensor& trace, const Tensor& shapes, const Tensor& t,
                                TraceLayout layout, const Shape& shape);

}  // namespace ad::detail
