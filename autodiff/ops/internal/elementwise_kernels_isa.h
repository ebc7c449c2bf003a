// Internal: the elementwise loops compiled per instruction set (autodiff/ops/isa/elementwise.cpp)
// for the functors of elementwise_functors.h, in float and double. elementwise_kernels.h calls
// them through GRADTAPE_ISA_KERNEL.
#pragma once

#include <cstdint>

#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/elementwise_functors.h"
#include "autodiff/ops/internal/isa_dispatch.h"

GRADTAPE_ISA_DECLARE(
    // z[i] = F(x[i * x_step], y[i * y_step]) for i in [0, n); steps are 0 or 1.
    template <class F, class T>
    void binary_elements(std::int64_t n, const T* x, std::int64_t x_step, const T* y,
                         std::int64_t y_step, T* z);
    // y[i] = F(x[i]) for i in [0, n).
    template <class F, class T> void unary_elements(std::int64_t n, const T* x, T* y);
    // sum_to's accumulation: acc[out] += g[in] over the runs of `plan` (operand a is the
    // accumulator's shape), a run that reduces to one output summed in fixed lanes.
    template <class T>
    void sum_runs(const ad::detail::BroadcastPlan& plan, const T* g, double* acc);)
