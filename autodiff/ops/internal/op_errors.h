// Internal: the one way op files word their errors. Build-time messages start with
// op_label(...) = "<op> '<node>'" (the builder's name and the name its node is about to get), like
// the run-time ones KernelContext::fail writes ("<Op> '<node>': ..."); then one lowercase line on
// what disagrees, with shapes. Also the checked readers of run-time shape tensors and the checked
// shape arithmetic that every op shares, so that no op wraps a dimension product silently.
#pragma once

#include <cstdint>
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
