// fused_batch_norm and fused_batch_norm_grad: declared with the rest of the normalization family
// in normalization.h; this header keeps the include path that existing code uses.
#pragma once

#include "gradtape/autodiff/ops/normalization.h"
