// Internal: one element converted to another element type, as Cast and Array::astype do it.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

namespace ad::detail {

// static_cast, except that a NaN or a floating value outside int64's range, which C++ leaves
// undefined as int64, becomes INT64_MIN: the "integer indefinite" of x86's conversion instruction,
// so what TF's CPU kernel gives, now the same with every compiler, vector width and sanitizer.
template <class To, class From>
[[nodiscard]] constexpr To convert_element(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_same_v<To, std::int64_t>) {
    constexpr auto kLimit = static_cast<From>(9223372036854775808.0);  // 2^63
    if (!(v >= -kLimit && v < kLimit)) return std::numeric_limits<std::int64_t>::min();
  }
  return static_cast<To>(v);
}

}  // namespace ad::detail
