// The float and double reductions of reduce_loops.h, compiled once per instruction set (see
// autodiff/ops/internal/isa_dispatch.h).
#include "autodiff/ops/internal/reduce_loops.h"

namespace ad::kernels::GRADTAPE_ISA_NS {

using detail::reduction::ReducePlan;

template <class T>
void reduce_sum(const ReducePlan& plan, const T* x, T* out) {
  detail::reduction::reduce_into(plan, x, out, detail::reduction::SumOp<T>{});
}

template <class T>
void reduce_mean(const ReducePlan& plan, const T* x, T* out) {
  detail::reduction::MeanOp<T> op;
  op.count = plan.count();
  detail::reduction::reduce_into(plan, x, out, op);
}

template <class T>
void reduce_max(const ReducePlan& plan, const T* x, T* out) {
  detail::reduction::reduce_into(plan, x, out, detail::reduction::MaxOp<T>{});
}

template <class T>
void reduce_min(const ReducePlan& plan, const T* x, T* out) {
  detail::reduction::reduce_into(plan, x, out, detail::reduction::MinOp<T>{});
}

#define GRADTAPE_INSTANTIATE(T)                                  \
  template void reduce_sum<T>(const ReducePlan&, const T*, T*);  \
  template void reduce_mean<T>(const ReducePlan&, const T*, T*); \
  template void reduce_max<T>(const ReducePlan&, const T*, T*);  \
  template void reduce_min<T>(const ReducePlan&, const T*, T*);
GRADTAPE_INSTANTIATE(float)
GRADTAPE_INSTANTIATE(double)

}  // namespace ad::kernels::GRADTAPE_ISA_NS
