// MergeMoments: the collective merge of per-rank (count, mean, M2) and its gradient.
#include "distributed/moments.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"

namespace ad::distributed {
namespace {

using detail::Bytes;

// Chan, Golub and LeVeque's pairwise update of (count, mean, M2) by another part's.
struct Partial {
  double n = 0;
  double mean = 0;
  double m2 = 0;
  void merge(double n_b, double mean_b, double m2_b) {
    if (n_b == 0) return;  // an empty rank's mean is NaN and contributes nothing
    const double total = n + n_b;
    const double delta = mean_b - mean;
    mean += delta * n_b / total;
    m2 += m2_b + delta * delta * n * n_b / total;
    n = total;
  }
};

template <class T>
void append(Bytes& bytes, const T* values, std::size_t count) {
  const std::size_t at = bytes.size();
  bytes.resize(at + count * sizeof(T));
  if (count > 0) std::memcpy(bytes.data() + at, values, count * sizeof(T));
}

// Inputs: local mean, local (biased) variance, x (for its run-time shape). Outputs: global mean,
// global variance, this rank's share of the global count n_r / N (a scalar the gradient uses) and
// the global count N (a Float64 scalar: the elements per channel over every rank).
template <class T>
void merge_moments(KernelContext& ctx) {
  const Array& mean = ctx.input(0);
  const Array& variance = ctx.input(1);
  const auto channels = static_cast<std::size_t>(mean.size());
  const std::int64_t count = channels == 0 ? 0 : ctx.input(2).size() / mean.size();
  Bytes payload;
  append(payload, &count, 1);
  append(payload, mean.data<T>().data(), channels);
  append(payload, variance.data<T>().data(), channels);
  const auto payloads = detail::exchange("global_moments", ctx.node().name, payload);
  std::vector<Partial> merged(channels);
  double total = 0;
  for (std::size_t r = 0; r < payloads.size(); ++r) {
    const Bytes& bytes = payloads[r];
    if (bytes.size() != payload.size()) {
      ctx.fail(str("rank ", r, " has ", (bytes.size() - sizeof count) / (2 * sizeof(T)),
                   " channels but rank ", rank(), " has ", channels));
    }
    std::int64_t n = 0;
    std::memcpy(&n, bytes.data(), sizeof n);
    total += static_cast<double>(n);
    const char* means = bytes.data() + sizeof n;
    const char* variances = means + channels * sizeof(T);
    for (std::size_t c = 0; c < channels; ++c) {
      T m{};
      T v{};
      std::memcpy(&m, means + c * sizeof(T), sizeof(T));
      std::memcpy(&v, variances + c * sizeof(T), sizeof(T));
      merged[c].merge(static_cast<double>(n), static_cast<double>(m),
                      static_cast<double>(v) * static_cast<double>(n));
    }
  }
  auto out_mean = ctx.allocate_output(0, mean.shape()).mutable_data<T>();
  auto out_variance = ctx.allocate_output(1, variance.shape()).mutable_data<T>();
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t c = 0; c < channels; ++c) {
    out_mean[c] = static_cast<T>(total > 0 ? merged[c].mean : kNaN);
    out_variance[c] = static_cast<T>(total > 0 ? merged[c].m2 / total : kNaN);
  }
  ctx.allocate_output(2, Shape{}).mutable_data<T>()[0] =
      static_cast<T>(total > 0 ? static_cast<double>(count) / total : 0.0);
  ctx.allocate_output(3, Shape{}).mutable_data<double>()[0] = total;
}

void merge_moments_kernel(KernelContext& ctx) {
  dispatch_floating(ctx.input(0).dtype(), [&](auto tag) { merge_moments<decltype(tag)>(ctx); });
}

// With share w = n_r / N and the incoming gradients G summed over the ranks:
//   d mean / d mean_r = w,   d var / d var_r = w,   d var / d mean_r = 2 w (mean_r - mean)
// (the mean's own dependence on mean_r cancels: sum_r n_r (mean_r - mean) = 0).
void merge_moments_gradient(GradContext& g) {
  const Tensor grads[] = {g.grad_output(0) ? g.grad_output(0) : zeros_like(g.output(0)),
                          g.grad_output(1) ? g.grad_output(1) : zeros_like(g.output(1))};
  const auto sums = grouped_allreduce(grads, ReduceOp::kSum, "global_moments_grad");
  const Tensor share = stop_gradient(g.output(2));
  // An empty rank's local mean and variance are NaN and its share 0. Its deviation and gradients
  // are selected to 0 (a where, not a product): the deviation, so that no product's gradient
  // multiplies by NaN; the gradients, so that the NaN of the local moments' own gradient (whose
  // 1/N is infinite there) meets a where rather than a product on its way back to the all-reduce.
  const Tensor has_examples = greater(share, zeros_like(share));
  const Tensor deviation = where(has_examples, g.input(0) - g.output(0), zeros_like(g.input(0)));
  const Tensor grad_mean = where(has_examples, share * sums[0] + 2.0 * share * deviation * sums[1],
                                 zeros_like(g.input(0)));
  const Tensor grad_var = where(has_examples, share * sums[1], zeros_like(g.input(1)));
  g.set(0, grad_mean);
  g.set(1, grad_var);
}

const OpDef kMergeMomentsOp{
    .name = "MergeMoments", .kernel = merge_moments_kernel, .gradient = merge_moments_gradient};

}  // namespace

nn::GlobalMoments global_moments_and_count(const Tensor& x, const std::vector<int>& axes,
                                           bool keepdims) {
  const Moments local = moments(x, axes, keepdims);
  if (!is_floating(x.dtype())) {
    throw ValueError(str("global_moments: x is ", x.dtype(), ", not floating"));
  }
  const Tensor inputs[] = {local.mean, local.variance, x};
  const auto outputs = x.graph().record(kMergeMomentsOp, inputs,
                                        {{x.dtype(), local.mean.shape()},
                                         {x.dtype(), local.variance.shape()},
                                         {x.dtype(), Shape{}},
                                         {DType::Float64, Shape{}}},
                                        {}, "global_moments");
  return {outputs[0], outputs[1], outputs[3]};
}

Moments global_moments(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  const nn::GlobalMoments m = global_moments_and_count(x, axes, keepdims);
  return {m.mean, m.variance};
}

}  // namespace ad::distributed
