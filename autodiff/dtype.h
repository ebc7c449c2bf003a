// Element types of arrays and tensors, and their C++ counterparts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string_view>
#include <type_traits>

namespace ad {

enum class DType : std::uint8_t { Float32, Float64, Int64, Bool };

// "float32", "float64", "int64", "bool".
[[nodiscard]] std::string_view dtype_name(DType dtype);
// Bytes per element.
[[nodiscard]] std::size_t dtype_size(DType dtype);
[[nodiscard]] constexpr bool is_floating(DType dtype) {
  return dtype == DType::Float32 || dtype == DType::Float64;
}
std::ostream& operator<<(std::ostream& out, DType dtype);

// The DType of a C++ element type: float, double, std::int64_t, bool.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) {
    return DType::Float32;
  } else if constexpr (std::is_same_v<T, double>) {
    return DType::Float64;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return DType::Int64;
  } else {
    static_assert(std::is_same_v<T, bool>, "gradtape arrays hold float, double, int64_t or bool");
    return DType::Bool;
  }
}

}  // namespace ad
