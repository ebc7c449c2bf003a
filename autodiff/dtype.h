// Element types of arrays and tensors, and their C++ counterparts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string_view>
#include <type_traits>

namespace ad {

// Int32 and UInt8 are TF1's common input dtypes (labels, images): placeholders, constants,
// variables, feeds, fetches and checkpoints hold them, and cast, the comparisons, gather/one_hot
// indices and the sparse cross-entropy labels take them; any other op refuses them when recorded,
// naming itself and the dtype (cast them first).
enum class DType : std::uint8_t { Float32, Float64, Int64, Bool, Int32, UInt8 };

// "float32", "float64", "int64", "bool", "int32", "uint8".
[[nodiscard]] std::string_view dtype_name(DType dtype);
// Bytes per element.
[[nodiscard]] std::size_t dtype_size(DType dtype);
[[nodiscard]] constexpr bool is_floating(DType dtype) {
  return dtype == DType::Float32 || dtype == DType::Float64;
}
// Int32 or UInt8: the dtypes only the ops listed above accept.
[[nodiscard]] constexpr bool is_narrow_integer(DType dtype) {
  return dtype == DType::Int32 || dtype == DType::UInt8;
}
// Int64, Int32 or UInt8: the dtypes of indices and class labels.
[[nodiscard]] constexpr bool is_integer(DType dtype) {
  return dtype == DType::Int64 || is_narrow_integer(dtype);
}
std::ostream& operator<<(std::ostream& out, DType dtype);

// The DType of a C++ element type: float, double, std::int64_t, bool, std::int32_t, std::uint8_t.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) {
    return DType::Float32;
  } else if constexpr (std::is_same_v<T, double>) {
    return DType::Float64;
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    return DType::Int64;
  } else if constexpr (std::is_same_v<T, std::int32_t>) {
    return DType::Int32;
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    return DType::UInt8;
  } else {
    static_assert(std::is_same_v<T, bool>,
                  "gradtape arrays hold float, double, int64_t, bool, int32_t or uint8_t");
    return DType::Bool;
  }
}

}  // namespace ad
