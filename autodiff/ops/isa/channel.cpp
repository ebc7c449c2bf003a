// The batch-norm family's contiguous-layout kernels (channel_stats.h), compiled once per
// instruction set (see autodiff/ops/internal/isa_dispatch.h).
#include "autodiff/ops/internal/channel_stats.h"

namespace ad::kernels::GRADTAPE_ISA_NS {

template <class T>
void channel_statistics(const detail::ChannelLayout& layout, const T* x,
                        detail::MomentStats* stats) {
  detail::channel_statistics(layout, x, stats);
}

template <class T>
void channel_grad_sums(const detail::ChannelLayout& layout, const T* x, const T* dy, const T* mean,
                       double* sum_dy, double* sum_dyx) {
  detail::channel_grad_sums(layout, x, dy, mean, sum_dy, sum_dyx);
}

template <class T>
void channel_affine(const detail::ChannelLayout& layout, const T* u, const T* a, const T* v,
                    const T* k, const T* b, T* out) {
  detail::channel_affine(layout, u, a, v, k, b, out);
}

#define GRADTAPE_INSTANTIATE(T)                                                                  \
  template void channel_statistics<T>(const detail::ChannelLayout&, const T*,                    \
                                      detail::MomentStats*);                                     \
  template void channel_grad_sums<T>(const detail::ChannelLayout&, const T*, const T*, const T*, \
                                     double*, double*);                                          \
  template void channel_affine<T>(const detail::ChannelLayout&, const T*, const T*, const T*,    \
                                  const T*, const T*, T*);
GRADTAPE_INSTANTIATE(float)
GRADTAPE_INSTANTIATE(double)

}  // namespace ad::kernels::GRADTAPE_ISA_NS
