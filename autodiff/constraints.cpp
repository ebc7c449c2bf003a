// Constraints, composed from ops (the norm ones) or, for the radial constraint, one gather-like op.
#include "autodiff/constraints.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"

namespace ad::constraints {

namespace {

void check_input(const char* what, const Tensor& w) {
  if (!w) throw ValueError(str(what, " constraint: the value is an empty Tensor"));
  if (!is_floating(w.dtype())) {
    throw ValueError(str(what, " constraint: '", w.name(), "' is ", w.dtype(),
                         "; constraints apply to float32 or float64 values"));
  }
}

// sqrt(sum(w^2, axis, keepdims)), with the axes checked against w's rank first so the error
// names the constraint.
Tensor norms(const char* what, const Tensor& w, const std::vector<int>& axis) {
  check_input(what, w);
  if (axis.empty()) {
    throw ValueError(str(what,
                         " constraint: the axis list is empty; name the axes the norm is "
                         "taken over (e.g. {0})"));
  }
  std::vector<int> resolved;
  for (const int a : axis) {
    const int r = normalize_axis(a, w.shape().rank(), what);
    if (std::find(resolved.begin(), resolved.end(), r) != resolved.end()) {
      throw ValueError(
          str(what, " constraint: axis ", a, " is listed twice for shape ", w.shape()));
    }
    resolved.push_back(r);
  }
  return sqrt(reduce_sum(square(w), resolved, /*keepdims=*/true));
}

// Keras's backend.clip: a max below the min is raised to the min.
Tensor clip(const Tensor& x, double min_value, double max_value) {
  max_value = std::max(max_value, min_value);
  return maximum(minimum(x, scalar_like(x, max_value)), scalar_like(x, min_value));
}

// ---- Radial constraint --------------------------------------------------------------------------

// The diagonal index whose value ring `ring` takes (see the header).
std::int64_t ring_source(std::int64_t size, std::int64_t ring) {
  const std::int64_t s = size / 2;
  if (size % 2 == 1) return s - 1 + ring;
  return ring == 0 ? s - 1 : s + ring;
}

std::int64_t ring_of(std::int64_t size, std::int64_t i) {
  const std::int64_t s = size / 2;
  if (size % 2 == 1) return i >= s ? i - s : s - i;
  return i >= s ? i - s : s - 1 - i;
}

void radial_kernel(KernelContext& ctx) {
  const Array& w = ctx.input(0);
  const std::int64_t size = w.shape()[0];
  const std::int64_t inner = w.shape()[2] * w.shape()[3];
  Array& out = ctx.allocate_output(0, w.shape());
  const std::size_t row_bytes = static_cast<std::size_t>(inner) * dtype_size(w.dtype());
  const auto* src = static_cast<const std::byte*>(w.raw_data());
  auto* dst = static_cast<std::byte*>(out.raw_mutable_data());
  for (std::int64_t h = 0; h < size; ++h) {
    for (std::int64_t c = 0; c < size; ++c) {
      const std::int64_t d = ring_source(size, std::max(ring_of(size, h), ring_of(size, c)));
      if (row_bytes == 0) continue;
      std::memcpy(dst + static_cast<std::size_t>(h * size + c) * row_bytes,
                  src + static_cast<std::size_t>(d * size + d) * row_bytes, row_bytes);
    }
  }
}

const OpDef kRadialOp{.name = "RadialConstraint", .kernel = radial_kernel};

}  // namespace

Constraint non_neg() {
  return [](const Tensor& w) {
    check_input("non_neg", w);
    return w * cast(greater_equal(w, scalar_like(w, 0.0)), w.dtype());
  };
}

Constraint max_norm(double max_value, std::vector<int> axis) {
  return [max_value, axis = std::move(axis)](const Tensor& w) {
    const Tensor n = norms("max_norm", w, axis);
    const Tensor desired = clip(n, 0.0, max_value);
    return w * (desired / (scalar_like(w, kEpsilon) + n));
  };
}

Constraint unit_norm(std::vector<int> axis) {
  return [axis = std::move(axis)](const Tensor& w) {
    const Tensor n = norms("unit_norm", w, axis);
    return w / (scalar_like(w, kEpsilon) + n);
  };
}

Constraint min_max_norm(double min_value, double max_value, double rate, std::vector<int> axis) {
  return [=, axis = std::move(axis)](const Tensor& w) {
    const Tensor n = norms("min_max_norm", w, axis);
    const Tensor desired =
        scalar_like(w, rate) * clip(n, min_value, max_value) + scalar_like(w, 1.0 - rate) * n;
    return w * (desired / (scalar_like(w, kEpsilon) + n));
  };
}

Constraint radial_constraint() {
  return [](const Tensor& w) {
    check_input("radial_constraint", w);
    const Shape& s = w.shape();
    if (s.rank() != 4) {
      throw ValueError(str("radial_constraint: '", w.name(), "' has shape ", s,
                           "; it needs a [height, width, channels, kernels] Conv2D kernel"));
    }
    if (s[0] < 2 || s[0] != s[1]) {
      throw ValueError(str("radial_constraint: '", w.name(), "' has shape ", s,
                           "; the kernel must be square and at least 2 x 2"));
    }
    const Tensor inputs[] = {w};
    return w.graph().record1(kRadialOp, inputs, {w.dtype(), s});
  };
}

}  // namespace ad::constraints
