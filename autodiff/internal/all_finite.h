// Internal: the finiteness test shared by the CheckNumerics op and the session's check_numerics
// option.
#pragma once

#include "autodiff/array.h"

namespace ad::detail {

// True when no element of a Float32 or Float64 array is NaN or infinite.
[[nodiscard]] bool all_finite(const Array& values);

}  // namespace ad::detail
