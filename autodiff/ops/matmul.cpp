// Matrix products: the builder's static checks and shape rule, a kernel that calls the GEMM wrapper
// once per batch entry, and the gradient as two more matmuls with transpose flags (no transposes
// are materialized), so it can be differentiated again.
#include "autodiff/ops/matmul.h"

#include <cstdint>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/internal/gemm.h"
#include "autodiff/ops/internal/op_errors.h"

namespace ad {

namespace {

struct MatMulAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
};

// Rows and columns of op(X), where op transposes the last two dims when asked.
std::int64_t rows_of(const Shape& s, bool transpose) { return s[s.rank() - (transpose ? 1 : 2)]; }
std::int64_t cols_of(const Shape& s, bool transpose) { return s[s.rank() - (transpose ? 2 : 1)]; }

std::string flags(const MatMulAttrs& attrs) {
  if (!attrs.transpose_a && !attrs.transpose_b) return "";
  if (attrs.transpose_a && attrs.transpose_b) return ", transpose_a and transpose_b";
  return attrs.transpose_a ? ", transpose_a" : ", transpose_b";
}

void matmul_kernel(KernelContext& ctx) {
  const Array& a = ctx.input(0);
  const Array& b = ctx.input(1);
  const auto& attrs = ctx.attrs<MatMulAttrs>();
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const int rank = sa.rank();
  const std::int64_t m = rows_of(sa, attrs.transpose_a);
  const std::int64_t k = cols_of(sa, attrs.transpose_a);
  const std::int64_t n = cols_of(sb, attrs.transpose_b);
  if (rows_of(sb, attrs.transpose_b) != k) {
    ctx.fail(str("inner dimensions differ: lhs is ", sa, ", rhs is ", sb, " (", k,
                 " != ", rows_of(sb, attrs.transpose_b), flags(attrs), ")"));
  }
  Shape out_shape;
  std::int64_t batch = 1;
  for (int d = 0; d < rank - 2; ++d) {
    if (sa[d] != sb[d]) {
      ctx.fail(str("batch dimensions differ: lhs is ", sa, ", rhs is ", sb, " (dim ", d, ": ",
                   sa[d], " != ", sb[d], ")"));
    }
    batch *= sa[d];
    out_shape.push_back(sa[d]);
  }
  out_shape.push_back(m);
  out_shape.push_back(n);
  Array& out = ctx.allocate_output(0, out_shape);
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>().data();
    const T* pb = b.data<T>().data();
    T* pc = out.mutable_data<T>().data();
    const std::int64_t lda = sa[rank - 1];
    const std::int64_t ldb = sb[rank - 1];
    // One GEMM per batch entry; gemm splits a large product into fixed row blocks across
    // threads itself (OpenBLAS runs single-threaded, see gemm.cpp).
    for (std::int64_t i = 0; i < batch; ++i) {
      gemm<T>(attrs.transpose_a, attrs.transpose_b, m, n, k, T{1}, pa + i * m * k, lda,
              pb + i * k * n, ldb, T{0}, pc + i * m * n, n);
    }
  });
}

// With C = op_a(A) op_b(B) and dC flowing back (TF's MatMul gradient, per flag combination):
//   plain:  dA = dC B^T      dB = A^T dC
//   tb:     dA = dC B        dB = dC^T A
//   ta:     dA = B dC^T      dB = A dC
//   ta, tb: dA = B^T dC^T    dB = dC^T A^T
void matmul_gradient(GradContext& g) {
  const auto& attrs = g.attrs<MatMulAttrs>();
  const Tensor dc = g.grad_output(0);
  const Tensor a = g.input(0);
  const Tensor b = g.input(1);
  const bool ta = attrs.transpose_a;
  const bool tb = attrs.transpose_b;
  if (g.wants(0)) {
    if (!ta) {
      g.set(0, matmul(dc, b, false, !tb));
    } else {
      g.set(0, matmul(b, dc, tb, true));
    }
  }
  if (g.wants(1)) {
    if (!tb) {
      g.set(1, matmul(a, dc, !ta, false));
    } else {
      g.set(1, matmul(dc, a, true, ta));
    }
  }
}

const OpDef kMatMulOp{.name = "MatMul", .kernel = matmul_kernel, .gradient = matmul_gradient};
const OpDef kBatchMatMulOp{
    .name = "BatchMatMulV2", .kernel = matmul_kernel, .gradient = matmul_gradient};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const bool batched = a && a.shape().rank() > 2;
  const OpDef& def = batched ? kBatchMatMulOp : kMatMulOp;
  if (!a || !b) throw ValueError("matmul: an operand is an empty Tensor");
  const std::string who = detail::op_label(a.graph(), "matmul", def.name);
  const auto fail = [&](const std::string& what) { throw ValueError(str(who, ": ", what)); };
  if (&a.graph() != &b.graph()) fail("operands belong to different graphs");
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (a.dtype() != b.dtype()) {
    fail(str("operands have different dtypes: lhs is ", a.dtype(), sa, ", rhs is ", b.dtype(), sb,
             " (use ad::cast)"));
  }
  if (!is_floating(a.dtype())) {
    fail(str("operands are ", a.dtype(), "; expected float32 or float64 (use ad::cast)"));
  }
  if (sa.rank() < 2 || sb.rank() < 2) {
    fail(str("operands must have rank >= 2: lhs is ", sa, ", rhs is ", sb,
             " (use ad::expand_dims or ad::reshape for vectors)"));
  }
  if (sa.rank() != sb.rank()) {
    fail(str("operands have different ranks: lhs is ", sa, ", rhs is ", sb,
             " (batched operands need the same batch dims; reshape or tile the smaller one)"));
  }
  const MatMulAttrs attrs{transpose_a, transpose_b};
  const std::int64_t ka = cols_of(sa, transpose_a);
  const std::int64_t kb = rows_of(sb, transpose_b);
  if (ka >= 0 && kb >= 0 && ka != kb) {
    fail(str("inner dimensions differ: lhs is ", sa, ", rhs is ", sb, " (", ka, " != ", kb,
             flags(attrs), ")"));
  }
  Shape out;
  for (int d = 0; d < sa.rank() - 2; ++d) {
    if (sa[d] >= 0 && sb[d] >= 0 && sa[d] != sb[d]) {
      fail(str("batch dimensions differ: lhs is ", sa, ", rhs is ", sb, " (dim ", d, ": ", sa[d],
               " != ", sb[d], ")"));
    }
    out.push_back(sa[d] >= 0 ? sa[d] : sb[d]);
  }
  out.push_back(rows_of(sa, transpose_a));
  out.push_back(cols_of(sb, transpose_b));
  const Tensor inputs[] = {a, b};
  return a.graph().record1(def, inputs, {a.dtype(), out}, attrs);
}

}  // namespace ad
