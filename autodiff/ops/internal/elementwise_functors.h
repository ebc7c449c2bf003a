// Internal: the elementwise functions whose loops are compiled per instruction set (see
// isa_dispatch.h): arithmetic, selections and the unary ops that vectorize (libm calls such as
// exp or tanh do not, so their ops keep the portable loop). An op's functor lives here rather than
// in its op's file because the kernel translation units instantiate its loops; the op itself
// (checks, gradient, OpDef, builder) stays in elementwise.cpp or activations.cpp.
//
// Adding one: define it here with `static constexpr bool kIsaKernel = true;`, list it in
// GRADTAPE_ISA_BINARY_FUNCTORS or GRADTAPE_ISA_UNARY_FUNCTORS, and use it in the op's kernel.
#pragma once

#include <cmath>

namespace ad::detail {

struct AddFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return x + y;
  }
};
struct SubFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return x - y;
  }
};
struct MulFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return x * y;
  }
};
struct DivFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return x / y;
  }
};
// NaN wins on either side, as in TF's CPU kernels (x != x only for NaN).
struct MaximumFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return (x >= y || x != x) ? x : y;
  }
};
struct MinimumFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return (x <= y || x != x) ? x : y;
  }
};
struct SquaredDifferenceFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T x, T y) const {
    return (x - y) * (x - y);
  }
};
// relu's gradient: dy where x > 0, else 0 (operands: dy, x). Both values are loaded before the
// select, so it vectorizes branch-free (relu's mask is random: a branch would mispredict).
struct ReluGradFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T dy, T x) const {
    return x > T{0} ? dy : T{0};
  }
};

struct NegFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return -v;
  }
};
struct AbsFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return std::abs(v);
  }
};
struct SqrtFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return std::sqrt(v);
  }
};
struct RsqrtFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return T{1} / std::sqrt(v);
  }
};
struct SquareFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return v * v;
  }
};
struct ReciprocalFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return T{1} / v;
  }
};
// NaN stays NaN, as in TF's and PyTorch's relu: !(v <= 0) holds for NaN.
struct ReluFn {
  static constexpr bool kIsaKernel = true;
  template <class T>
  T operator()(T v) const {
    return !(v <= T{0}) ? v : T{0};
  }
};

// The functors above, for the kernel translation units' explicit instantiations.
#define GRADTAPE_ISA_BINARY_FUNCTORS(X) \
  X(AddFn) X(SubFn) X(MulFn) X(DivFn) X(MaximumFn) X(MinimumFn) X(SquaredDifferenceFn) X(ReluGradFn)
#define GRADTAPE_ISA_UNARY_FUNCTORS(X) \
  X(NegFn) X(AbsFn) X(SqrtFn) X(RsqrtFn) X(SquareFn) X(ReciprocalFn) X(ReluFn)

template <class F>
concept IsaKernelFunctor = requires {
  requires F::kIsaKernel;
};

}  // namespace ad::detail
