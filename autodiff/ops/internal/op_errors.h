// Internal: the one way op files word their errors. Build-time messages start with
// op_label(...) = "<op> '<node>'" (the builder's name and the name its node is about to get), like
// the run-time ones KernelContext::fail writes ("<Op> '<node>': ..."); then one lowercase line on
// what disagrees, with shapes. Also the checked readers of run-time shape tensors and the checked
// shape arithmetic that every op shares, so that no op wraps a dimension product silently.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/shape.h"
#include "autodiff/tensor.h"

namespace ad::detail {

// "<op> '<node>'": `op` is the builder's name ("reshape"), `node` the base name its node gets
// ("Reshape"); the name is looked up without being taken.
[[nodiscard]] inline std::string op_label(Graph& graph, std::string_view op,
                                          std::string_view node) {
  return str(op, " '", graph.unique_name(node, /*mark_used=*/false), "'");
}

// ValueError "<op>: the input is an empty Tensor" for a default-constructed Tensor.
inline void require_tensor(const Tensor& x, std::string_view op) {
  if (!x) throw ValueError(str(op, ": the input is an empty Tensor"));
}

// "[1, 2, 3]".
[[nodiscard]] inline std::string vector_string(std::span<const std::int64_t> values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

// a * b, or nullopt when the product does not fit in int64: the one check every shape product
// (tile's multiples, pad's sums, reshape's counts) goes through.
[[nodiscard]] inline std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}
[[nodiscard]] inline std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// The element count of `shape` (unknown dims count as 1), or nullopt when it overflows int64.
[[nodiscard]] inline std::optional<std::int64_t> checked_count(const Shape& shape) {
  std::int64_t count = 1;
  for (const auto d : shape.dims()) {
    const auto next = checked_mul(count, d < 0 ? 1 : d);
    if (!next) return std::nullopt;
    count = *next;
  }
  return count;
}

// Build time: ValueError "<who>: the result shape [...] has more elements than fit in int64"
// unless `shape`'s count fits.
inline void require_countable(const std::string& who, const Shape& shape) {
  if (!checked_count(shape)) {
    throw ValueError(
        str(who, ": the result shape ", shape, " has more elements than fit in int64"));
  }
}

// Run time: the same as an InvalidArgumentError naming the node.
inline void require_countable(const KernelContext& ctx, const Shape& shape) {
  if (!checked_count(shape))
    ctx.fail(str("the result shape ", shape, " has more elements than fit in int64"));
}

// The run-time shape held by input i, a 1-D Int64 tensor that `what` names in messages ("the
// shape", "input_sizes"). InvalidArgumentError naming the op for a negative entry, a rank above
// Shape::kMaxRank, or an element count that overflows int64.
[[nodiscard]] inline Shape shape_from_input(const KernelContext& ctx, int i,
                                            std::string_view what = "the shape") {
  const auto dims = ctx.input(i).data<std::int64_t>();
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] < 0)
      ctx.fail(str("dimension ", d, " of ", what, " ", vector_string(dims), " is negative"));
  }
  if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank))
    ctx.fail(str("rank ", dims.size(), " exceeds the supported maximum of ", Shape::kMaxRank));
  std::int64_t count = 1;
  for (const auto d : dims) {
    if (__builtin_mul_overflow(count, d, &count))
      ctx.fail(str(what, " ", vector_string(dims), " has more elements than fit in int64"));
  }
  return Shape(dims);
}

}  // namespace ad::detail
