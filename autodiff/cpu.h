// The instruction set the hot kernels run with. The library holds each hot kernel (batch-norm
// statistics, affine and gradient passes, elementwise arithmetic and activations, reductions,
// softmax and cross-entropy, optimizer updates) compiled for SSE2, AVX2 and AVX-512, and picks one
// set when the process first runs a kernel: the best the CPU reports, capped by the environment
// variable GRADTAPE_ISA=sse2|avx2|avx512 when it is set. Every set gives bitwise the same results
// (fixed summation lanes, no fused multiply-add contraction), so the choice changes speed only.
#pragma once

#include <string_view>

namespace ad {

enum class Isa { kSse2 = 0, kAvx2 = 1, kAvx512 = 2 };

// The instruction set the kernels run with now.
[[nodiscard]] Isa isa();
// The best instruction set this CPU supports: AVX2 needs AVX2 and FMA; AVX-512 needs AVX-512 F, BW,
// DQ and VL (with the operating system saving the wider registers, as the CPU reports).
[[nodiscard]] Isa best_isa();
// Runs the kernels with `cap`, or with best_isa() when the CPU lacks `cap`; returns the set now in
// effect. It replaces GRADTAPE_ISA's cap. Allowed at any time, also after kernels have run and
// from any thread: kernels are stateless, and a kernel already running finishes with the set it
// started with (bitwise the same result either way).
Isa set_isa(Isa cap);
// "sse2", "avx2" or "avx512".
[[nodiscard]] std::string_view isa_name(Isa isa);

}  // namespace ad
