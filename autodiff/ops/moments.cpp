// ad::moments: mean and biased variance over axes, composed from reductions as TF's nn.moments,
// with a gradient written as ops so that derivatives of every order are exact.
#include <string>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"

namespace ad {

// Forward: mean = reduce_mean(x), then the variance in one more pass around that mean
// (detail::centered_variance): sum((x - mean)^2) / N - (sum(x - mean) / N)^2, accumulated in
// double. Never E[x^2] - E[x]^2. The values are TF's nn.moments up to rounding, and more accurate
// when the mean is large against the spread: TF squares deviations from a mean already rounded to
// float32, which costs up to ~1e-3 relative for 1e6 + N(0, 1); the second term removes that.
//
// Gradient: TF builds its variance from stop_gradient(mean), which is exact to first order but
// not beyond (spec section 9.4); gradtape promises exact second derivatives, so the gradient is
// given by hand, with N elements per statistic and dm, dv the incoming gradients (keepdims shape):
//   dx = dm / N + (2 dv / N) * (x - mean)
// where `mean` is this op's own output: differentiating dx again reaches x through mean as well,
// which gives the exact Hessian. `axes` empty means all axes, as for the reductions.
Moments moments(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  if (!x) throw ValueError("moments: the input is an empty Tensor");
  const NameScope scope(x.graph(), "moments");
  const std::string node = scope.name().substr(0, scope.name().size() - 1);
  if (!is_floating(x.dtype())) {
    throw ValueError(str("moments '", node, "': '", x.name(), "' is ", x.dtype(), x.shape(),
                         "; expected float32 or float64 (use ad::cast)"));
  }
  const std::vector<int> resolved = detail::resolve_axes("moments", node, x, axes);

  const auto forward = [&](const std::vector<Tensor>& inputs) -> std::vector<Tensor> {
    const Tensor& y = inputs[0];
    const Tensor mean = reduce_mean(y, resolved, true);
    const Tensor variance = detail::centered_variance(y, mean, resolved, true);
    if (keepdims) return {mean, variance};
    return {detail::squeeze_reduced_dims(mean, resolved),
            detail::squeeze_reduced_dims(variance, resolved)};
  };
  const auto gradient = [resolved, keepdims](const std::vector<Tensor>& inputs,
                                             const std::vector<Tensor>& outputs,
                                             const std::vector<Tensor>& grads) {
    const auto kept = [&](const Tensor& t) {
      return keepdims ? t : detail::expand_reduced_dims(t, resolved);
    };
    // An empty grads entry means that output received no gradient: its term is zero.
    const Tensor& y = inputs[0];
    const Tensor count = detail::reduced_count(y, resolved);
    const Tensor dm = grads[0] ? div(kept(grads[0]), count) : Tensor();
    if (!grads[1]) return std::vector<Tensor>{dm ? broadcast_like(dm, y) : Tensor()};
    const Tensor dv = div(mul(kept(grads[1]), scalar_like(y, 2.0)), count);
    const Tensor dx = mul(dv, sub(y, kept(outputs[0])));
    return std::vector<Tensor>{dm ? add(dm, dx) : dx};
  };
  const auto outputs = custom_gradient({x}, forward, gradient);
  return {outputs[0], outputs[1]};
}

}  // namespace ad
