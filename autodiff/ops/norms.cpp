// tf.norm and tf.nn.l2_normalize, composed from reductions and elementwise ops as TF composes
// them, so their gradients (of every order) come from the parts.
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

void require_floating(const std::string& who, const Tensor& x) {
  if (!is_floating(x.dtype())) {
    throw ValueError(str(who, ": '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; expected float32 or float64 (use ad::cast)"));
  }
}

// The two axes of a matrix norm in the caller's order (rows, columns), resolved against x.
std::vector<int> matrix_axes(const std::string& who, const Tensor& x,
                             const std::vector<int>& axes) {
  const int rank = x.shape().rank();
  std::vector<int> out;
  for (const int a : axes) {
    const int r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) {
      throw ValueError(str(who, ": axis ", a, " is out of range for '", x.name(), "' ", x.shape()));
    }
    out.push_back(r);
  }
  if (out[0] == out[1]) {
    throw ValueError(
        str(who, ": the two axes of a matrix norm are the same (", axes[0], ", ", axes[1], ")"));
  }
  return out;
}

// ord 1: the largest column sum (sum over rows, max over columns); ord inf: the largest row sum.
Tensor matrix_norm(const Tensor& x, NormOrder ord, const std::vector<int>& axes, bool keepdims) {
  if (ord == NormOrder::kEuclidean) return sqrt(reduce_sum(square(x), axes, keepdims));
  const int summed = ord == NormOrder::kOne ? axes[0] : axes[1];
  const int maxed = ord == NormOrder::kOne ? axes[1] : axes[0];
  const Tensor sums = reduce_sum(abs(x), {summed}, /*keepdims=*/true);
  const Tensor result = reduce_max(sums, {maxed}, /*keepdims=*/true);
  if (keepdims) return result;
  return reduce_sum(result, {axes[0], axes[1]}, /*keepdims=*/false);  // drops the two size-1 dims
}

}  // namespace

Tensor norm(const Tensor& x, NormOrder ord, const std::vector<int>& axes, bool keepdims) {
  detail::require_tensor(x, "norm");
  const std::string who = detail::op_label(x.graph(), "norm", "norm");
  require_floating(who, x);
  if (axes.size() > 2) {
    throw ValueError(str(who, ": ", axes.size(),
                         " axes given; a norm takes none (all elements as "
                         "one vector), one (vectors) or two (matrices)"));
  }
  const NameScope scope(x.graph(), "norm");
  if (axes.size() == 2) return matrix_norm(x, ord, matrix_axes(who, x, axes), keepdims);
  switch (ord) {
    case NormOrder::kOne:
      return reduce_sum(abs(x), axes, keepdims);
    case NormOrder::kInfinity:
      return reduce_max(abs(x), axes, keepdims);
    case NormOrder::kEuclidean:
      break;
  }
  return sqrt(reduce_sum(square(x), axes, keepdims));
}

namespace nn {

Tensor l2_normalize(const Tensor& x, const std::vector<int>& axes, double epsilon) {
  detail::require_tensor(x, "l2_normalize");
  require_floating(detail::op_label(x.graph(), "l2_normalize", "l2_normalize"), x);
  const NameScope scope(x.graph(), "l2_normalize");
  const Tensor square_sum = reduce_sum(square(x), axes, /*keepdims=*/true);
  return mul(x, rsqrt(maximum(square_sum, scalar_like(x, epsilon))));
}

Tensor l2_normalize(const Tensor& x, int axis, double epsilon) {
  return l2_normalize(x, std::vector<int>{axis}, epsilon);
}

}  // namespace nn

}  // namespace ad
