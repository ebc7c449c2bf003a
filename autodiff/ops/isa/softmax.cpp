// The softmax family's row loops (softmax_rows.h), compiled once per instruction set (see
// autodiff/ops/internal/isa_dispatch.h).
#include "autodiff/ops/internal/softmax_rows.h"

namespace ad::kernels::GRADTAPE_ISA_NS {

template <class T, bool kLog>
void softmax(std::int64_t outer, std::int64_t length, std::int64_t inner, const T* x, T* y) {
  detail::softmax_loop<T, kLog>(outer, length, inner, x, y);
}

template <class T>
void sparse_xent(std::int64_t batch, std::int64_t classes, const T* x, const std::int64_t* label,
                 T* probs, T* loss) {
  detail::sparse_xent_loop(batch, classes, x, label, probs, loss);
}

template <class T>
void sparse_xent_grad(std::int64_t batch, std::int64_t classes, const T* probs, const T* dloss,
                      const std::int64_t* label, T* grad) {
  detail::sparse_xent_grad_loop(batch, classes, probs, dloss, label, grad);
}

template <class T>
void softmax_xent(std::int64_t rows, std::int64_t classes, const T* x, const T* labels,
                  T* log_probs, T* loss) {
  detail::softmax_xent_loop(rows, classes, x, labels, log_probs, loss);
}

#define GRADTAPE_INSTANTIATE(T)                                                                    \
  template void softmax<T, false>(std::int64_t, std::int64_t, std::int64_t, const T*, T*);         \
  template void softmax<T, true>(std::int64_t, std::int64_t, std::int64_t, const T*, T*);          \
  template void sparse_xent<T>(std::int64_t, std::int64_t, const T*, const std::int64_t*, T*, T*); \
  template void sparse_xent_grad<T>(std::int64_t, std::int64_t, const T*, const T*,                \
                                    const std::int64_t*, T*);                                      \
  template void softmax_xent<T>(std::int64_t, std::int64_t, const T*, const T*, T*, T*);
GRADTAPE_INSTANTIATE(float)
GRADTAPE_INSTANTIATE(double)

}  // namespace ad::kernels::GRADTAPE_ISA_NS
