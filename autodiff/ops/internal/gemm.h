// Internal: the one entry point to OpenBLAS. C = alpha * op(A) * op(B) + beta * C on row-major
// matrices, where op(X) is X or its transpose. Only gemm.cpp includes <cblas.h>, so BLAS stays out
// of every other translation unit and of the public headers.
#pragma once

#include <cstdint>

namespace ad {

// Row-major GEMM for float and double: op(A) is m x k, op(B) is k x n, C is m x n; lda, ldb and
// ldc are the row strides (in elements) of A, B and C as stored. k == 0 gives C = beta * C.
// Throws InvalidArgumentError when a dimension exceeds the 32-bit BLAS interface.
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                                 const float*, std::int64_t, const float*, std::int64_t, float,
                                 float*, std::int64_t);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                                  const double*, std::int64_t, const double*, std::int64_t, double,
                                  double*, std::int64_t);

}  // namespace ad
