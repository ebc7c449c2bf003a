// Internal: calls a hot kernel in the instruction set chosen at run time (see autodiff/cpu.h).
//
// How: the kernels' source (autodiff/ops/isa/*.cpp, optim/isa/*.cpp) is compiled three times, once
// per instruction set, with -DGRADTAPE_ISA_NS=sse2|avx2|avx512 and that set's -m flags, into the
// namespaces ad::kernels::sse2, ::avx2 and ::avx512 (declared in isa_kernels.h).
// GRADTAPE_ISA_KERNEL(name)(args...) calls the one of the active set: a relaxed atomic load and
// an indirect call per kernel, nothing per element.
//
// The templates of the kernel headers (channel_stats.h, reduce_loops.h, fixed_lanes.h, ...) sit
// in the inline namespace GRADTAPE_KERNEL_NS, which is isa_<set> in a kernel translation unit and
// isa_default elsewhere: an instantiation compiled with AVX-512 then never shares a symbol with
// the portable one, so the linker cannot pick the AVX-512 copy for the portable callers (an
// illegal instruction on a CPU without AVX-512). tests/autodiff/isa_symbols.cmake checks that a
// kernel object defines no weak symbol outside its own namespaces.
#pragma once

#include <atomic>

#include "autodiff/cpu.h"

#if defined(GRADTAPE_ISA_NS)
#define GRADTAPE_KERNEL_NS GRADTAPE_ISA_CONCAT(isa_, GRADTAPE_ISA_NS)
#define GRADTAPE_ISA_CONCAT(a, b) GRADTAPE_ISA_CONCAT2(a, b)
#define GRADTAPE_ISA_CONCAT2(a, b) a##b
#else
#define GRADTAPE_KERNEL_NS isa_default
#endif

namespace ad::detail {

// The active set as an int, or -1 before the first choice (constant-initialized, so a kernel run
// from another library's static initializer still sees a valid state).
extern std::atomic<int> active_isa_index;
int choose_isa_index();  // reads the CPU and GRADTAPE_ISA once

inline int current_isa_index() {
  const int i = active_isa_index.load(std::memory_order_relaxed);
  return i >= 0 ? i : choose_isa_index();
}

// The kernel of the active set among three (the same function compiled three times).
template <auto Sse2, auto Avx2, auto Avx512>
auto isa_kernel() {
  switch (current_isa_index()) {
    case static_cast<int>(Isa::kAvx512):
      return Avx512;
    case static_cast<int>(Isa::kAvx2):
      return Avx2;
    default:
      return Sse2;
  }
}

}  // namespace ad::detail

// GRADTAPE_ISA_KERNEL(channel_statistics<float>): a pointer to ad::kernels::<set>::name of the
// active set, called as GRADTAPE_ISA_KERNEL(name)(args...).
#define GRADTAPE_ISA_KERNEL(...)                                                                 \
  ::ad::detail::isa_kernel<&::ad::kernels::sse2::__VA_ARGS__, &::ad::kernels::avx2::__VA_ARGS__, \
                           &::ad::kernels::avx512::__VA_ARGS__>()

// Declares the same kernels in the three namespaces ad::kernels::sse2, ::avx2 and ::avx512 (at
// global scope; types from ad::detail are spelled with that prefix).
#define GRADTAPE_ISA_DECLARE(...) \
  namespace ad::kernels::sse2 {   \
  __VA_ARGS__                     \
  }                               \
  namespace ad::kernels::avx2 {   \
  __VA_ARGS__                     \
  }                               \
  namespace ad::kernels::avx512 { \
  __VA_ARGS__                     \
  }
