// Choosing the kernels' instruction set: what the CPU reports, capped by GRADTAPE_ISA or set_isa.
#include "autodiff/cpu.h"

#include <cstdlib>
#include <string>

#include "autodiff/ops/internal/isa_dispatch.h"
#include "autodiff/warnings.h"

namespace ad {

namespace detail {

std::atomic<int> active_isa_index{-1};

namespace {

Isa detect_isa() {
#if defined(GRADTAPE_ISA_DISPATCH) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  // __builtin_cpu_supports reports a set only when the OS also saves its registers (XGETBV).
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  return avx512 ? Isa::kAvx512 : avx2 ? Isa::kAvx2 : Isa::kSse2;
#else
  // Without dispatch (GRADTAPE_NATIVE, or not x86-64) the three kernel sets are the same code.
  return Isa::kSse2;
#endif
}

// GRADTAPE_ISA as a cap; an unknown value is reported once and ignored.
Isa environment_cap(Isa best) {
  const char* value = std::getenv("GRADTAPE_ISA");
  if (value == nullptr || *value == '\0') return best;
  const std::string v(value);
  for (const Isa i : {Isa::kSse2, Isa::kAvx2, Isa::kAvx512}) {
    if (v == isa_name(i)) return i < best ? i : best;
  }
  warn("GRADTAPE_ISA=" + v + " is not one of sse2, avx2, avx512: using " +
       std::string(isa_name(best)));
  return best;
}

}  // namespace

int choose_isa_index() {
  static const int chosen = [] {
    const int i = static_cast<int>(environment_cap(best_isa()));
    int expected = -1;
    active_isa_index.compare_exchange_strong(expected, i, std::memory_order_relaxed);
    return i;
  }();
  const int now = active_isa_index.load(std::memory_order_relaxed);
  return now >= 0 ? now : chosen;
}

}  // namespace detail

Isa best_isa() {
  static const Isa best = detail::detect_isa();
  return best;
}

Isa isa() { return static_cast<Isa>(detail::current_isa_index()); }

Isa set_isa(Isa cap) {
  const Isa best = best_isa();
  const Isa chosen = cap < best ? cap : best;
  detail::choose_isa_index();  // read GRADTAPE_ISA first, so it cannot override this call later
  detail::active_isa_index.store(static_cast<int>(chosen), std::memory_order_relaxed);
  return chosen;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "sse2";
  }
}

}  // namespace ad
