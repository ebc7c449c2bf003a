// The GEMM wrapper over OpenBLAS (cblas_sgemm / cblas_dgemm): the only file that includes
// <cblas.h>.
#include "autodiff/ops/internal/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <type_traits>

#include "autodiff/error.h"
#include "autodiff/internal/thread_pool.h"

namespace ad {

namespace {

blasint to_blas(std::int64_t value, const char* what) {
  if (value < 0 || value > std::numeric_limits<blasint>::max()) {
    throw InvalidArgumentError(str("gemm: ", what, " = ", value,
                                   " does not fit the 32-bit BLAS interface; split the product"));
  }
  return static_cast<blasint>(value);
}

// C = beta * C, the whole product when k == 0. BLAS would also do this, but some builds reject
// the leading dimensions of empty operands.
template <class T>
void scale_c(std::int64_t m, std::int64_t n, T beta, T* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T{0}) {
      std::fill(row, row + n, T{0});  // beta == 0 overwrites, even NaN, as BLAS specifies
    } else {
      for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

}  // namespace

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const auto ta = transpose_a ? CblasTrans : CblasNoTrans;
  const auto tb = transpose_b ? CblasTrans : CblasNoTrans;
  const blasint bm = to_blas(m, "m");
  const blasint bn = to_blas(n, "n");
  const blasint bk = to_blas(k, "k");
  const blasint blda = to_blas(lda, "lda");
  const blasint bldb = to_blas(ldb, "ldb");
  const blasint bldc = to_blas(ldc, "ldc");
  // OpenBLAS's own threads may split the k dimension, so its results change with its thread count.
  // gradtape runs it single-threaded and splits large products itself into fixed blocks of rows of
  // C, one BLAS call each, run on the library's threads: the same calls whatever the number of
  // threads, so the same bits.
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { openblas_set_num_threads(1); });
  auto call = [&](blasint rows, const T* a_rows, T* c_rows) {
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta, tb, rows, bn, bk, alpha, a_rows, blda, b, bldb, beta, c_rows,
                  bldc);
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, rows, bn, bk, alpha, a_rows, blda, b, bldb, beta, c_rows,
                  bldc);
    }
  };
  constexpr std::int64_t kRows = 64;
  const std::int64_t blocks = (m + kRows - 1) / kRows;
  if (blocks < 2 || m * n * k < (std::int64_t{1} << 21)) {
    call(bm, a, c);
    return;
  }
  detail::parallel_for(blocks, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t block = first; block < last; ++block) {
      const std::int64_t row = block * kRows;
      const auto rows = static_cast<blasint>(std::min(kRows, m - row));
      // Row `row` of op(A) starts at a + row * lda (A stored [m, k]) or a + row (A stored [k, m]).
      call(rows, transpose_a ? a + row : a + row * lda, c + row * ldc);
    }
  });
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                           const double*, std::int64_t, const double*, std::int64_t, double,
                           double*, std::int64_t);

}  // namespace ad
