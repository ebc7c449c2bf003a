// The optimizers' update loops (optim/internal/update_kernels.h), compiled once per instruction
// set (see autodiff/ops/internal/isa_dispatch.h).
#include <cmath>

#include "autodiff/ops/internal/parallel_loops.h"
#include "optim/internal/update_kernels.h"

namespace ad::kernels::GRADTAPE_ISA_NS {

template <class T>
void gradient_descent_update(std::int64_t n, T* w, const T* g, T lr) {
  detail::for_each_element(n, [&](std::int64_t i) { w[i] -= g[i] * lr; });
}

template <class T>
void momentum_update(std::int64_t n, T* w, T* a, const T* g, T lr, T mu, bool nesterov) {
  if (nesterov) {
    detail::for_each_element(n, [&](std::int64_t i) {
      a[i] = a[i] * mu + g[i];
      w[i] -= g[i] * lr + a[i] * mu * lr;
    });
  } else {
    detail::for_each_element(n, [&](std::int64_t i) {
      a[i] = a[i] * mu + g[i];
      w[i] -= a[i] * lr;
    });
  }
}

template <class T>
void adam_update(std::int64_t n, T* w, T* m, T* v, const T* g, T alpha, T one_minus_beta1,
                 T one_minus_beta2, T epsilon) {
  detail::for_each_element(n, [&](std::int64_t i) {
    m[i] += (g[i] - m[i]) * one_minus_beta1;
    v[i] += (g[i] * g[i] - v[i]) * one_minus_beta2;
    w[i] -= (m[i] * alpha) / (std::sqrt(v[i]) + epsilon);
  });
}

#define GRADTAPE_INSTANTIATE(T)                                                 \
  template void gradient_descent_update<T>(std::int64_t, T*, const T*, T);      \
  template void momentum_update<T>(std::int64_t, T*, T*, const T*, T, T, bool); \
  template void adam_update<T>(std::int64_t, T*, T*, T*, const T*, T, T, T, T);
GRADTAPE_INSTANTIATE(float)
GRADTAPE_INSTANTIATE(double)

}  // namespace ad::kernels::GRADTAPE_ISA_NS
