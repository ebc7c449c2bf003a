// Matrix products through OpenBLAS. Rank-2 operands, or batched operands of equal rank >= 3 whose
// leading (batch) dims match; transpose flags apply to the last two dims.
#pragma once

#include "gradtape/autodiff/tensor.h"

namespace ad {

[[nodiscard]] Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false,
                            bool transpose_b = false);

}  // namespace ad
