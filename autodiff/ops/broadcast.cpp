// Broadcast plans: right-align, compute element strides, merge dims that broadcast alike.
#include "autodiff/ops/internal/broadcast.h"

#include <algorithm>

namespace ad::detail {

std::optional<Shape> broadcast_shapes(std::initializer_list<const Shape*> shapes) {
  int rank = 0;
  for (const Shape* s : shapes) rank = std::max(rank, s->rank());
  Shape out;
  for (int d = 0; d < rank; ++d) out.push_back(1);
  for (const Shape* s : shapes) {
    for (int d = 0; d < s->rank(); ++d) {
      const int o = d + rank - s->rank();
      const std::int64_t v = (*s)[d];
      if (v == out[o] || v == 1) continue;
      if (out[o] != 1) return std::nullopt;
      out[o] = v;
    }
  }
  return out;
}

BroadcastPlan make_broadcast_plan(const Shape& out, const Shape& a, const Shape& b) {
  const int rank = out.rank();
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::array<std::array<std::int64_t, Shape::kMaxRank>, 2> strides{};
  const Shape* operands[2] = {&a, &b};
  for (int k = 0; k < 2; ++k) {
    const Shape& s = *operands[k];
    std::int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int sd = d - (rank - s.rank());
      const std::int64_t dim = sd >= 0 ? s[sd] : 1;
      strides[static_cast<unsigned>(k)][static_cast<unsigned>(d)] =
          (dim == 1 && out[d] != 1) ? 0 : stride;
      stride *= dim;
    }
  }
  for (int d = 0; d < rank; ++d) dims[static_cast<unsigned>(d)] = out[d];
  // Merge dim d into d+1 when both operands are contiguous across the pair (or broadcast in both).
  BroadcastPlan plan;
  int r = 0;
  for (int d = 0; d < rank; ++d) {
    const auto u = static_cast<unsigned>(d);
    if (dims[u] == 1 && rank > 1) continue;  // size-1 dims carry no iteration
    if (r > 0) {
      const auto p = static_cast<unsigned>(r - 1);
      bool mergeable = true;
      for (int k = 0; k < 2; ++k) {
        const auto ku = static_cast<unsigned>(k);
        const std::int64_t outer = plan.strides[ku][p];
        const std::int64_t inner = strides[ku][u];
        if (!((outer == 0 && inner == 0) || (inner != 0 && outer == inner * dims[u])))
          mergeable = false;
      }
      if (mergeable) {
        plan.dims[p] *= dims[u];
        for (unsigned k = 0; k < 2; ++k) plan.strides[k][p] = strides[k][u];
        continue;
      }
    }
    const auto ru = static_cast<unsigned>(r);
    plan.dims[ru] = dims[u];
    for (unsigned k = 0; k < 2; ++k) plan.strides[k][ru] = strides[k][u];
    ++r;
  }
  if (r == 0) {  // scalar output (or all dims 1)
    plan.dims[0] = 1;
    plan.strides[0][0] = 0;
    plan.strides[1][0] = 0;
    r = 1;
  }
  plan.rank = r;
  plan.size = 1;
  for (int d = 0; d < r; ++d) plan.size *= plan.dims[static_cast<unsigned>(d)];
  return plan;
}

}  // namespace ad::detail
