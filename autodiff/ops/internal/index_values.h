// Internal: index and label arrays of any integer dtype read as int64, for the kernels that take
// them (gather, one_hot, the sparse cross-entropy).
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/kernel.h"

namespace ad::detail {

// The elements of an Int64, Int32 or UInt8 array as int64: the array's own data for Int64, else
// `widened`, filled with them. The builders admit no other dtype.
[[nodiscard]] inline std::span<const std::int64_t> index_values(
    const Array& indices, std::vector<std::int64_t>& widened) {
  if (indices.dtype() == DType::Int64) return indices.data<std::int64_t>();
  widened.resize(static_cast<std::size_t>(indices.size()));
  dispatch_any(indices.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const auto in = indices.data<T>();
      for (std::size_t i = 0; i < in.size(); ++i) widened[i] = static_cast<std::int64_t>(in[i]);
    } else {
      throw InternalError(str("index_values: ", indices.dtype(), " indices"));
    }
  });
  return widened;
}

}  // namespace ad::detail
