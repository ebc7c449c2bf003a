// Initializers: constant fills, seeded random draws, variance scaling (Glorot, He, LeCun) and the
// orthogonal initializer with its own QR op (no gradient: it only produces initial values).
#include "autodiff/initializers.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/internal/thread_pool.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/random.h"

namespace ad::initializers {

namespace {

// Where a failing initializer was called from: Variable::create records it under
// "<variable>/Initializer/".
std::string where(const Graph& graph) {
  const std::string& scope = graph.name_scope();
  return scope.empty() ? std::string() : str(" (in '", scope, "')");
}

void check_floating(const Graph& graph, const char* what, DType dtype) {
  if (!is_floating(dtype)) {
    throw ValueError(str(what, " initializer", where(graph), ": cannot fill a ", dtype,
                         " variable; random initializers need float32 or float64"));
  }
}

RandomOptions random_options(DType dtype, std::optional<std::int64_t> seed) {
  return {.dtype = dtype, .seed = seed};
}

// ---- Orthogonal ---------------------------------------------------------------------------------

struct OrthogonalAttrs {
  double gain = 1.0;
  bool transpose = false;  // the variable has fewer rows than columns: it receives Q^T
};

// c -= 2 (v . c) v over `len` elements: the Householder reflection I - 2 v v^T (v of unit norm)
// applied to the vector c.
void reflect(const double* v, double* c, std::int64_t len) {
  double dot = 0;
#pragma omp simd reduction(+ : dot)
  for (std::int64_t i = 0; i < len; ++i) dot += v[i] * c[i];
  dot *= 2;
#pragma omp simd
  for (std::int64_t i = 0; i < len; ++i) c[i] -= dot * v[i];
}

// Householder QR of the m x n matrix A (m >= n, stored as n columns of length m), giving the
// m x n factor Q with the signs of its columns chosen so that R has a positive diagonal (TF's
// q *= sign(diag(r)), which makes the result uniformly distributed over orthogonal matrices).
// Column j of Q ends up in cols[j].
void orthonormalize(std::vector<std::vector<double>>& cols, std::int64_t m) {
  const auto n = static_cast<std::int64_t>(cols.size());
  std::vector<std::vector<double>> reflectors(static_cast<std::size_t>(n));
  std::vector<double> r_diag(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k) {
    std::vector<double>& x = cols[static_cast<std::size_t>(k)];
    double norm2 = 0;
    for (std::int64_t i = k; i < m; ++i)
      norm2 += x[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(i)];
    const double x0 = x[static_cast<std::size_t>(k)];
    const double alpha = x0 >= 0 ? -std::sqrt(norm2) : std::sqrt(norm2);
    r_diag[static_cast<std::size_t>(k)] = alpha;
    std::vector<double> v(x.begin() + k, x.end());
    v[0] -= alpha;
    double v_norm2 = 0;
    for (double e : v) v_norm2 += e * e;
    if (v_norm2 == 0) continue;  // already upper triangular in this column
    const double inv = 1.0 / std::sqrt(v_norm2);
    for (double& e : v) e *= inv;
    const std::int64_t len = m - k;
    const double* vp = v.data();
    // Parallel per reflector only: worth it only when each carries about a millisecond of
    // work (columns are independent, so the result does not depend on the thread count).
    auto reflect_columns = [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t j = k + 1 + first; j < k + 1 + last; ++j) {
        reflect(vp, cols[static_cast<std::size_t>(j)].data() + k, len);
      }
    };
    if ((n - k) * len >= (1 << 20)) {
      detail::parallel_for(n - k - 1, reflect_columns);
    } else {
      reflect_columns(0, n - k - 1);
    }
    reflectors[static_cast<std::size_t>(k)] = std::move(v);
  }
  // Q e_j = H_0 H_1 ... H_{n-1} e_j; reflectors H_k with k > j leave e_j unchanged.
  auto form_columns = [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t j = first; j < last; ++j) {
      std::vector<double>& q = cols[static_cast<std::size_t>(j)];
      std::fill(q.begin(), q.end(), 0.0);
      q[static_cast<std::size_t>(j)] = r_diag[static_cast<std::size_t>(j)] < 0 ? -1.0 : 1.0;
      for (std::int64_t k = j; k >= 0; --k) {
        const std::vector<double>& v = reflectors[static_cast<std::size_t>(k)];
        if (!v.empty()) reflect(v.data(), q.data() + k, m - k);
      }
    }
  };
  if (n * m >= (1 << 14)) {
    detail::parallel_for(n, form_columns);
  } else {
    form_columns(0, n);
  }
}

void orthogonal_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<OrthogonalAttrs>();
  const Array& a = ctx.input(0);
  const std::int64_t m = a.shape()[0];
  const std::int64_t n = a.shape()[1];
  Array& out = ctx.allocate_output(0, ctx.node().outputs[0].shape);
  dispatch_floating(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto in = a.data<T>();
    std::vector<std::vector<double>> cols(static_cast<std::size_t>(n),
                                          std::vector<double>(static_cast<std::size_t>(m)));
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        cols[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)] =
            static_cast<double>(in[static_cast<std::size_t>(i * n + j)]);
      }
    }
    orthonormalize(cols, m);
    auto o = out.mutable_data<T>();
    // Q is m x n; the variable is [m, n] as rows x columns, or [n, m] (Q^T) when transposed.
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        const double value =
            attrs.gain * cols[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)];
        const std::int64_t index = attrs.transpose ? j * m + i : i * n + j;
        o[static_cast<std::size_t>(index)] = static_cast<T>(value);
      }
    }
  });
}

const OpDef kOrthogonalOp{.name = "Orthogonal", .kernel = orthogonal_kernel};

}  // namespace

Fans compute_fans(const Shape& shape) {
  const int rank = shape.rank();
  if (rank == 0) return {};
  if (rank == 1) {
    const auto d = static_cast<double>(shape[0]);
    return {d, d};
  }
  double field = 1.0;
  for (int i = 0; i < rank - 2; ++i) field *= static_cast<double>(shape[i]);
  return {static_cast<double>(shape[rank - 2]) * field,
          static_cast<double>(shape[rank - 1]) * field};
}

Initializer zeros() {
  return
      [](Graph& graph, const Shape& shape, DType dtype) { return ad::zeros(graph, shape, dtype); };
}

Initializer ones() {
  return
      [](Graph& graph, const Shape& shape, DType dtype) { return ad::ones(graph, shape, dtype); };
}

Initializer constant(double value) {
  return [value](Graph& graph, const Shape& shape, DType dtype) {
    return ad::fill(graph, shape, value, dtype);
  };
}

Initializer constant(const Array& value) {
  return [value](Graph& graph, const Shape& shape, DType dtype) {
    const std::int64_t count = shape.num_elements();
    if (value.size() == count) {
      return ad::constant(graph, value.astype(dtype).reshaped(shape), "Const");
    }
    if (value.size() == 1) return ad::fill(graph, shape, value.flat(0), dtype);
    throw ValueError(str("constant initializer", where(graph), ": the value has shape ",
                         value.shape(), " (", value.size(),
                         " elements) but the variable has shape ", shape, " (", count,
                         " elements); give one value or exactly ", count));
  };
}

Initializer random_normal(double mean, double stddev, std::optional<std::int64_t> seed) {
  return [=](Graph& graph, const Shape& shape, DType dtype) {
    check_floating(graph, "random_normal", dtype);
    return ad::random_normal(graph, shape, mean, stddev, random_options(dtype, seed));
  };
}

Initializer truncated_normal(double mean, double stddev, std::optional<std::int64_t> seed) {
  return [=](Graph& graph, const Shape& shape, DType dtype) {
    check_floating(graph, "truncated_normal", dtype);
    return ad::truncated_normal(graph, shape, mean, stddev, random_options(dtype, seed));
  };
}

Initializer random_uniform(double minval, double maxval, std::optional<std::int64_t> seed) {
  return [=](Graph& graph, const Shape& shape, DType dtype) {
    check_floating(graph, "random_uniform", dtype);
    return ad::random_uniform(graph, shape, minval, maxval, random_options(dtype, seed));
  };
}

Initializer variance_scaling(double scale, FanMode mode, Distribution distribution,
                             std::optional<std::int64_t> seed) {
  if (!(scale > 0)) {
    throw ValueError(str("variance_scaling initializer: scale must be positive, got ", scale));
  }
  return [=](Graph& graph, const Shape& shape, DType dtype) {
    check_floating(graph, "variance_scaling", dtype);
    const Fans fans = compute_fans(shape);
    double n = fans.fan_in;
    if (mode == FanMode::kFanOut) n = fans.fan_out;
    if (mode == FanMode::kFanAvg) n = (fans.fan_in + fans.fan_out) / 2.0;
    const double variance = scale / std::max(1.0, n);
    const RandomOptions options = random_options(dtype, seed);
    switch (distribution) {
      case Distribution::kTruncatedNormal: {
        // The standard deviation of a unit normal truncated to [-2, 2].
        constexpr double kTruncatedStddev = 0.87962566103423978;
        return ad::truncated_normal(graph, shape, 0.0, std::sqrt(variance) / kTruncatedStddev,
                                    options);
      }
      case Distribution::kUntruncatedNormal:
        return ad::random_normal(graph, shape, 0.0, std::sqrt(variance), options);
      case Distribution::kUniform:
        break;
    }
    const double limit = std::sqrt(3.0 * variance);
    return ad::random_uniform(graph, shape, -limit, limit, options);
  };
}

Initializer glorot_uniform(std::optional<std::int64_t> seed) {
  return variance_scaling(1.0, FanMode::kFanAvg, Distribution::kUniform, seed);
}
Initializer glorot_normal(std::optional<std::int64_t> seed) {
  return variance_scaling(1.0, FanMode::kFanAvg, Distribution::kTruncatedNormal, seed);
}
Initializer he_normal(std::optional<std::int64_t> seed) {
  return variance_scaling(2.0, FanMode::kFanIn, Distribution::kTruncatedNormal, seed);
}
Initializer he_uniform(std::optional<std::int64_t> seed) {
  return variance_scaling(2.0, FanMode::kFanIn, Distribution::kUniform, seed);
}
Initializer lecun_normal(std::optional<std::int64_t> seed) {
  return variance_scaling(1.0, FanMode::kFanIn, Distribution::kTruncatedNormal, seed);
}
Initializer lecun_uniform(std::optional<std::int64_t> seed) {
  return variance_scaling(1.0, FanMode::kFanIn, Distribution::kUniform, seed);
}

Initializer orthogonal(double gain, std::optional<std::int64_t> seed) {
  return [=](Graph& graph, const Shape& shape, DType dtype) {
    check_floating(graph, "orthogonal", dtype);
    if (shape.rank() < 2) {
      throw ValueError(str("orthogonal initializer", where(graph), ": the shape ", shape,
                           " has rank ", shape.rank(), "; it needs rank 2 or more"));
    }
    std::int64_t rows = 1;
    for (int i = 0; i < shape.rank() - 1; ++i) rows *= shape[i];
    const std::int64_t cols = shape[shape.rank() - 1];
    const Tensor normal =
        ad::random_normal(graph, Shape{std::max(rows, cols), std::min(rows, cols)}, 0.0, 1.0,
                          random_options(dtype, seed));
    const Tensor inputs[] = {normal};
    return graph.record1(kOrthogonalOp, inputs, {dtype, shape},
                         OrthogonalAttrs{.gain = gain, .transpose = rows < cols});
  };
}

}  // namespace ad::initializers
