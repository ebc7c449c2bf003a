// Internal: the loops behind every elementwise op and the two recorders, so that an op in
// elementwise.cpp or activations.cpp is one block: its functor, gradient, OpDef and builder.
// Binary loops broadcast NumPy-style: a same-shape fast path, a scalar fast path, and otherwise
// contiguous runs from a broadcast plan. Large loops use OpenMP (fixed chunks: see
// parallel_loops.h).
#pragma once

#include <any>
#include <cstdint>
#include <type_traits>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/internal/broadcast.h"
#include "autodiff/ops/internal/elementwise_kernels_isa.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/tensor.h"

namespace ad::detail {

// Which dtypes a binary op takes and what it returns; see record_binary.
struct BinaryOptions {
  bool bool_result = false;  // comparisons: the result is Bool whatever the operands are
  bool numeric_only = true;  // Bool operands are a ValueError
};

// Records a binary node after checking that both operands exist, share a graph and a dtype, and
// broadcast (ValueError naming the op otherwise).
[[nodiscard]] Tensor record_binary(const OpDef& op, const Tensor& a, const Tensor& b,
                                   BinaryOptions options = {});
// Records a unary node on a float32 or float64 x (ValueError naming the op otherwise); `attrs`
// reach the kernel as ctx.attrs<A>() (see unary_param_kernel).
[[nodiscard]] Tensor record_unary(const OpDef& op, const Tensor& x, std::any attrs = {});

inline Shape runtime_broadcast(const KernelContext& ctx, const Shape& a, const Shape& b) {
  const auto out = broadcast_shapes({&a, &b});
  if (!out) ctx.fail(str("shapes ", a, " and ", b, " cannot be broadcast"));
  return *out;
}

// z = f(x, y) over the broadcast of a and b into out.
template <class In, class Out, class F>
void binary_loop(const Array& a, const Array& b, Array& out, F f) {
  const In* x = a.data<In>().data();
  const In* y = b.data<In>().data();
  Out* z = out.mutable_data<Out>().data();
  const std::int64_t n = out.size();
  if (a.size() == n && b.size() == n) {
    for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], y[i]); });
    return;
  }
  if (b.size() == 1 && a.size() == n) {
    const In s = y[0];
    for_each_element(n, [&](std::int64_t i) { z[i] = f(x[i], s); });
    return;
  }
  if (a.size() == 1 && b.size() == n) {
    const In s = x[0];
    for_each_element(n, [&](std::int64_t i) { z[i] = f(s, y[i]); });
    return;
  }
  const auto plan = make_broadcast_plan(out.shape(), a.shape(), b.shape());
  for_each_run(plan, [&](std::int64_t o, std::int64_t ao, std::int64_t bo, std::int64_t len,
                         std::int64_t sa, std::int64_t sb) {
    Out* zo = z + o;
    const In* xo = x + ao;
    const In* yo = y + bo;
    if (sa == 1 && sb == 1) {
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(xo[i], yo[i]);
    } else if (sa == 1) {
      const In s = yo[0];
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(xo[i], s);
    } else if (sb == 1) {
      const In s = xo[0];
#pragma omp simd
      for (std::int64_t i = 0; i < len; ++i) zo[i] = f(s, yo[i]);
    } else {
      const Out v = f(xo[0], yo[0]);
      for (std::int64_t i = 0; i < len; ++i) zo[i] = v;
    }
  });
}

// z = F{}(x, y) over the broadcast of a and b into out, with the loops of the active instruction
// set (elementwise_kernels_isa.h): F is one of elementwise_functors.h, T float or double.
template <class F, class T>
void isa_binary_loop(const Array& a, const Array& b, Array& out) {
  const T* x = a.data<T>().data();
  const T* y = b.data<T>().data();
  T* z = out.mutable_data<T>().data();
  const std::int64_t n = out.size();
  const auto run = GRADTAPE_ISA_KERNEL(binary_elements<F, T>);
  if (a.size() == n && b.size() == n) {
    run(n, x, 1, y, 1, z);
  } else if (b.size() == 1 && a.size() == n) {
    run(n, x, 1, y, 0, z);
  } else if (a.size() == 1 && b.size() == n) {
    run(n, x, 0, y, 1, z);
  } else {
    const auto plan = make_broadcast_plan(out.shape(), a.shape(), b.shape());
    for_each_run(plan, [&](std::int64_t o, std::int64_t ao, std::int64_t bo, std::int64_t len,
                           std::int64_t sa, std::int64_t sb) {
      run(len, x + ao, sa == 1 ? 1 : 0, y + bo, sb == 1 ? 1 : 0, z + o);
    });
  }
}

// out = F{}(a, b) with out of the operands' dtype; F is a (generic) lambda type, or a functor of
// elementwise_functors.h whose float loops run in the active instruction set.
template <class F>
void arithmetic_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  Array& out = ctx.allocate_output(0, runtime_broadcast(ctx, a.shape(), b.shape()));
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("arithmetic on bool tensors is not supported");
    } else if constexpr (IsaKernelFunctor<F> && std::is_floating_point_v<T>) {
      isa_binary_loop<F, T>(a, b, out);
    } else {
      binary_loop<T, T>(a, b, out, [](T x, T y) { return static_cast<T>(F{}(x, y)); });
    }
  });
}

// out = F{}(a, b) as Bool.
template <class F>
void compare_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  Array& out = ctx.allocate_output(0, runtime_broadcast(ctx, a.shape(), b.shape()));
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    binary_loop<T, bool>(a, b, out, [](T x, T y) { return static_cast<bool>(F{}(x, y)); });
  });
}

// y = F{}(x) over a floating x.
template <class F>
void unary_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t n = x.size();
    if constexpr (IsaKernelFunctor<F>) {
      GRADTAPE_ISA_KERNEL(unary_elements<F, T>)(n, in, y);
    } else {
      const F f{};
      for_each_element(n, [&](std::int64_t i) { y[i] = static_cast<T>(f(in[i])); });
    }
  });
}

// The parameter of a unary op that has one (leaky_relu's alpha), stored as its attrs.
struct UnaryParam {
  double value = 0;
};

// y = F{}(x, p) with p = the node's UnaryParam in x's dtype.
template <class F>
void unary_param_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const T p = static_cast<T>(ctx.attrs<UnaryParam>().value);
    const F f{};
    for_each_element(x.size(), [&](std::int64_t i) { y[i] = static_cast<T>(f(in[i], p)); });
  });
}

}  // namespace ad::detail
