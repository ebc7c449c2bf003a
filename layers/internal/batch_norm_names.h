// Internal to batch_normalization*.cpp: how the layer names itself and its axes in errors.
#pragma once

#include <string>
#include <vector>

#include "autodiff/error.h"

namespace ad::layers::detail {

// "batch_normalization '<scope>'".
[[nodiscard]] inline std::string bn_label(const std::string& scope) {
  return str("batch_normalization '", scope, "'");
}

// "[1, 3]".
[[nodiscard]] inline std::string axes_string(const std::vector<int>& axes) {
  std::string out = "[";
  for (std::size_t i = 0; i < axes.size(); ++i) out += (i ? ", " : "") + std::to_string(axes[i]);
  return out + "]";
}

}  // namespace ad::layers::detail
