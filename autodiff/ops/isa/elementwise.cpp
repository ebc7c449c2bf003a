// The elementwise loops of the functors in elementwise_functors.h, compiled once per instruction
// set (see autodiff/ops/internal/isa_dispatch.h).
#include "autodiff/ops/internal/elementwise_kernels_isa.h"
#include "autodiff/ops/internal/fixed_lanes.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad::kernels::GRADTAPE_ISA_NS {

// z = F(x, y) over n elements; a step of 0 repeats that operand's first element.
template <class F, class T>
void binary_elements(std::int64_t n, const T* x, std::int64_t x_step, const T* y,
                     std::int64_t y_step, T* z) {
  const F f{};
  if (x_step != 0 && y_step != 0) {
    detail::for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], y[i]); });
  } else if (x_step != 0) {
    const T s = y[0];
    detail::for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], s); });
  } else if (y_step != 0) {
    const T s = x[0];
    detail::for_each_element(n, [&](std::int64_t i) { z[i] = f(s, y[i]); });
  } else {
    const T v = f(x[0], y[0]);
    for (std::int64_t i = 0; i < n; ++i) z[i] = v;
  }
}

// y = F(x) over n elements.
template <class F, class T>
void unary_elements(std::int64_t n, const T* x, T* y) {
  const F f{};
  detail::for_each_element(n, [&](std::int64_t i) { y[i] = f(x[i]); });
}

template <class T>
void sum_runs(const detail::BroadcastPlan& plan, const T* g, double* acc) {
  detail::for_each_run(plan, [&](std::int64_t off, std::int64_t o_off, std::int64_t, std::int64_t n,
                                 std::int64_t so, std::int64_t) {
    const T* run = g + off;
    if (so == 0) {
      // Fixed lanes, not `omp simd reduction`: the same bits with every vector width.
      acc[o_off] +=
          detail::fixed_lane_sum(n, [&](std::int64_t i) { return static_cast<double>(run[i]); });
    } else {
      double* a = acc + o_off;
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) a[i] += static_cast<double>(run[i]);
    }
  });
}

template void sum_runs<float>(const detail::BroadcastPlan&, const float*, double*);
template void sum_runs<double>(const detail::BroadcastPlan&, const double*, double*);

#define GRADTAPE_INSTANTIATE_BINARY(F)                                                        \
  template void binary_elements<detail::F, float>(std::int64_t, const float*, std::int64_t,   \
                                                  const float*, std::int64_t, float*);        \
  template void binary_elements<detail::F, double>(std::int64_t, const double*, std::int64_t, \
                                                   const double*, std::int64_t, double*);
#define GRADTAPE_INSTANTIATE_UNARY(F)                                                 \
  template void unary_elements<detail::F, float>(std::int64_t, const float*, float*); \
  template void unary_elements<detail::F, double>(std::int64_t, const double*, double*);
GRADTAPE_ISA_BINARY_FUNCTORS(GRADTAPE_INSTANTIATE_BINARY)
GRADTAPE_ISA_UNARY_FUNCTORS(GRADTAPE_INSTANTIATE_UNARY)

}  // namespace ad::kernels::GRADTAPE_ISA_NS
