// CheckNumerics: pass-through kernel with a vectorized NaN/Inf scan, and its gradient.
#include "autodiff/check_numerics.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/internal/all_finite.h"
#include "autodiff/internal/thread_pool.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace {

struct CheckNumericsAttrs {
  std::string message;
};

// x - x is 0 for every finite x and NaN for NaN and +-Inf, so one sum per range answers "all
// finite?" without a branch per element. Whether a sum is NaN does not depend on its order or on
// how the elements are cut into ranges, so the answer is the same with any number of threads.
template <class T>
T finite_probe(const T* x, std::int64_t begin, std::int64_t end) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (std::int64_t i = begin; i < end; ++i) acc += x[i] - x[i];
  return acc;
}

template <class T>
bool all_finite_elements(const T* x, std::int64_t n) {
  if (n < detail::kParallelElements) return finite_probe(x, 0, n) == 0;
  std::atomic<bool> finite{true};
  detail::parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
    if (finite_probe(x, begin, end) != 0) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

void check_numerics_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  if (!detail::all_finite(x)) {
    bool has_nan = false;
    bool has_inf = false;
    dispatch_floating(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      for (T v : x.data<T>()) {
        has_nan |= std::isnan(v);
        has_inf |= std::isinf(v);
      }
    });
    const char* what = has_nan && has_inf ? "Inf and NaN" : (has_nan ? "NaN" : "Inf");
    ctx.fail(str(ctx.attrs<CheckNumericsAttrs>().message, ": tensor had ", what, " values (",
                 x.dtype(), x.shape(), ")"));
  }
  ctx.set_output(0, x);
}

void check_numerics_gradient(GradContext& g) {
  if (!g.grad_output(0)) return;
  g.set(0, check_numerics(g.grad_output(0),
                          str("Not a number (NaN) or infinity (Inf) values detected in gradient. ",
                              g.attrs<CheckNumericsAttrs>().message)));
}

const OpDef kCheckNumericsOp{
    .name = "CheckNumerics", .kernel = check_numerics_kernel, .gradient = check_numerics_gradient};

}  // namespace

bool detail::all_finite(const Array& values) {
  return dispatch_floating(values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return all_finite_elements(values.data<T>().data(), values.size());
  });
}

Tensor check_numerics(const Tensor& x, std::string_view message, std::string_view name) {
  if (!x) throw ValueError("check_numerics: the input is an empty Tensor");
  if (x.is_op()) {
    throw ValueError(str("check_numerics: '", x.name(), "' is an op without outputs"));
  }
  if (!is_floating(x.dtype())) {
    throw ValueError(str("check_numerics: '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; only Float32 and Float64 tensors can hold NaN or Inf"));
  }
  const Tensor inputs[] = {x};
  return x.graph().record1(kCheckNumericsOp, inputs, {x.dtype(), x.shape()},
                           CheckNumericsAttrs{std::string(message)},
                           name.empty() ? "CheckNumerics" : name);
}

}  // namespace ad
