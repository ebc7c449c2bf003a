// Internal: iteration over NumPy-broadcast operands. Dimensions are right-aligned, adjacent dims
// that broadcast the same way are merged, and the callback receives contiguous runs of the
// innermost dim, so loops stay vectorizable.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>

#include "autodiff/shape.h"

namespace ad::detail {

struct BroadcastPlan {
  int rank = 0;  // after merging; at least 1
  std::array<std::int64_t, Shape::kMaxRank> dims{};
  std::array<std::array<std::int64_t, Shape::kMaxRank>, 2> strides{};  // elements; 0 = broadcast
  std::int64_t size = 1;
};

// The run-time shape of broadcasting `shapes` together (right-aligned; along each dim every shape
// has 1 or the common size), or nullopt when they do not broadcast.
std::optional<Shape> broadcast_shapes(std::initializer_list<const Shape*> shapes);

// Plan for iterating `out` with operands a and b broadcast into it (each dim of a/b is 1 or equal).
BroadcastPlan make_broadcast_plan(const Shape& out, const Shape& a, const Shape& b);

// Calls f(out_offset, a_offset, b_offset, n, a_stride, b_stride) for each run of the inner dim.
template <class F>
void for_each_run(const BroadcastPlan& plan, F&& f) {
  const int r = plan.rank;
  const std::int64_t inner = plan.dims[static_cast<unsigned>(r - 1)];
  const std::int64_t sa = plan.strides[0][static_cast<unsigned>(r - 1)];
  const std::int64_t sb = plan.strides[1][static_cast<unsigned>(r - 1)];
  std::array<std::int64_t, Shape::kMaxRank> index{};
  std::int64_t a_off = 0;
  std::int64_t b_off = 0;
  for (std::int64_t out = 0; out < plan.size; out += inner) {
    f(out, a_off, b_off, inner, sa, sb);
    for (int d = r - 2; d >= 0; --d) {
      const auto u = static_cast<unsigned>(d);
      a_off += plan.strides[0][u];
      b_off += plan.strides[1][u];
      if (++index[u] < plan.dims[u]) break;
      a_off -= plan.strides[0][u] * plan.dims[u];
      b_off -= plan.strides[1][u] * plan.dims[u];
      index[u] = 0;
    }
  }
}

}  // namespace ad::detail
