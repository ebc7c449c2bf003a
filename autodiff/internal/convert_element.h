// Internal: one element converted to another element type, as Cast and Array::astype do it.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

namespace ad::detail {

// A floating value truncated toward zero to the signed integer I (int64 or int32). A NaN or a value
// outside I's range, which C++ leaves undefined, becomes I's minimum: the "integer indefinite" of
// x86's conversion instruction, so what TF's CPU kernel gives, now the same with every compiler,
// vector width and sanitizer.
template <class I, class From>
[[nodiscard]] constexpr I truncate_to_signed(From v) {
  constexpr auto kLimit = static_cast<From>(std::numeric_limits<I>::max()) + From{1};  // 2^(bits-1)
  if (!(v >= -kLimit && v < kLimit)) return std::numeric_limits<I>::min();
  return static_cast<I>(v);
}

// static_cast, with TF's CPU rules where C++ leaves a conversion undefined:
//   float -> int64, int32: truncation; NaN or out of range -> INT64_MIN, INT32_MIN;
//   float -> uint8: through int32 as above, then modulo 256 (so -1.0 -> 255, 300.0 -> 44,
//     NaN and 1e10 -> 0), which is what TF's kernel does on x86 (tensorflow/tensorflow#59702);
//   integer -> narrower integer: modulo 2^bits (two's complement, defined since C++20);
//   anything -> bool: nonzero (NaN is true).
template <class To, class From>
[[nodiscard]] constexpr To convert_element(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_same_v<To, std::int64_t>) {
    return truncate_to_signed<std::int64_t>(v);
  } else if constexpr (std::is_floating_point_v<From> && std::is_same_v<To, std::int32_t>) {
    return truncate_to_signed<std::int32_t>(v);
  } else if constexpr (std::is_floating_point_v<From> && std::is_same_v<To, std::uint8_t>) {
    return static_cast<std::uint8_t>(truncate_to_signed<std::int32_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace ad::detail
