// The normalization family: per-channel moments as one mergeable statistic, batch normalization's
// composed formula, and its fused forward and gradient ops. The kernels (one blocked, deterministic
// reduction to (count, mean, M2) per channel, merged with Chan's formula) live in channel_stats.h.
//
// Axes: every function here takes the REDUCTION axes, listed explicitly; an empty list reduces
// over nothing (each element is its own channel). Only ad::moments (declared in nn.h, defined in
// normalization.cpp) follows the reductions' convention, where an empty list means all axes.
// Per-channel tensors (statistics, scale, offset) have x's shape with the reduction axes set to
// 1 (the keepdims shape); the batch-norm builders also accept any shape holding as many values.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad {

struct FusedBatchNormGrad {
  Tensor dx;
  Tensor dscale;   // shaped like `mean` (the keepdims statistics shape)
  Tensor doffset;  // likewise
};

// The inputs of fused_batch_norm_grad; `scale` may be empty (no scale).
struct FusedBatchNormGradInputs {
  Tensor dy{};
  Tensor x{};
  Tensor scale{};
  Tensor mean{};
  Tensor variance{};
};

// The gradient of y = (x - mean) * rsqrt(variance + epsilon) * scale + offset, where mean and
// variance are per-channel statistics of x over `reduction_axes`.
// - training: mean and variance are the batch statistics (biased variance) of x itself, and dx
//   accounts for their dependence on x;
// - inference: they are population statistics (inputs independent of x).
// Inputs are Float32 or Float64 of one dtype. One op, two passes over x and dy; it has a gradient
// of its own, so double backward works.
[[nodiscard]] FusedBatchNormGrad fused_batch_norm_grad(const FusedBatchNormGradInputs& inputs,
                                                       double epsilon,
                                                       const std::vector<int>& reduction_axes,
                                                       bool training);
// The same with positional inputs.
[[nodiscard]] FusedBatchNormGrad fused_batch_norm_grad(const Tensor& dy, const Tensor& x,
                                                       const Tensor& scale, const Tensor& mean,
                                                       const Tensor& variance, double epsilon,
                                                       const std::vector<int>& reduction_axes,
                                                       bool training);

namespace nn {

// ---- statistics --------------------------------------------------------------------------------

// Per-channel partial statistics in the accumulation type (Float64, keepdims shape): the element
// count, the mean and M2 = sum((x - mean)^2). Partials of disjoint parts of a channel (batch
// shards on several processes, groups) combine with merge_moment_statistics, and
// moments_from_statistics turns the result into a mean and a variance; every step is
// differentiable (count is a constant).
struct MomentStatistics {
  Tensor count;
  Tensor mean;
  Tensor m2;
};

// The statistics of x (Float32 or Float64) over `reduction_axes`, as one node reading x once.
[[nodiscard]] MomentStatistics moment_statistics(const Tensor& x,
                                                 const std::vector<int>& reduction_axes);

// Chan's merge of P partials stacked on a leading axis ([P, ...] each, e.g. from an allgather):
// N = sum_p n_p, mean = sum_p n_p mean_p / N, M2 = sum_p (M2_p + n_p (mean_p - mean)^2), summed
// in a fixed order. The result has the partials' shape without the leading axis.
[[nodiscard]] MomentStatistics merge_moment_statistics(const MomentStatistics& stacked);

// Mean and biased variance M2 / count in `dtype` (Float32 or Float64).
[[nodiscard]] std::pair<Tensor, Tensor> moments_from_statistics(const MomentStatistics& statistics,
                                                                DType dtype);

// Mean and biased variance over `reduction_axes` (keepdims) as one node: a single read of x from
// memory (two passes over cache-sized chunks, merged with Chan's formula in double). Its gradient
// is recorded as ops, so derivatives of every order are exact.
[[nodiscard]] std::pair<Tensor, Tensor> channel_moments(const Tensor& x,
                                                        const std::vector<int>& reduction_axes);
// The same statistics; the name the layer's composed path has always used.
[[nodiscard]] std::pair<Tensor, Tensor> exact_moments(const Tensor& x,
                                                      const std::vector<int>& reduction_axes);

// ---- batch normalization
// -------------------------------------------------------------------------

// x * scale + shift with per-channel scale and shift, as one node: one read of x and one write of
// the result.
[[nodiscard]] Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift,
                                    const std::vector<int>& reduction_axes);

// The composed formula with TF's nn.batch_normalization op order, the last step one ChannelAffine
// node: inv = rsqrt(variance + epsilon) (* scale); y = x * inv + (offset - mean * inv).
// `scale` and `offset` may be empty; all per-channel inputs in the keepdims shape.
[[nodiscard]] Tensor normalize_channels(const Tensor& x, const Tensor& mean, const Tensor& variance,
                                        const Tensor& scale, const Tensor& offset, double epsilon,
                                        const std::vector<int>& reduction_axes);

// The inputs of fused_batch_norm. `scale` and `offset` may be empty. In training `mean` and
// `variance` are ignored (leave them empty) and the batch statistics are returned; in inference
// they are the population statistics and receive gradients too.
struct FusedBatchNormInputs {
  Tensor x{};
  Tensor scale{};
  Tensor offset{};
  Tensor mean{};
  Tensor variance{};
};

struct FusedBatchNorm {
  Tensor y;
  Tensor mean;      // training: the batch mean (keepdims shape); inference: the given mean
  Tensor variance;  // training: the biased batch variance; inference: the given variance
};

// Batch normalization whose forward pass is the composition of the statistics and the formula
// above, and whose gradient is fused_batch_norm_grad (like tf.nn.fused_batch_norm, but for any
// rank and any set of reduction axes). In training the forward pass is one node
// (BatchNormTraining), bitwise equal to channel_moments, the formula's ops and channel_affine.
[[nodiscard]] FusedBatchNorm fused_batch_norm(const FusedBatchNormInputs& inputs, double epsilon,
                                              const std::vector<int>& reduction_axes,
                                              bool training);
// The same with positional inputs.
[[nodiscard]] FusedBatchNorm fused_batch_norm(const Tensor& x, const Tensor& scale,
                                              const Tensor& offset, const Tensor& mean,
                                              const Tensor& variance, double epsilon,
                                              const std::vector<int>& reduction_axes,
                                              bool training);

// ---- synchronized batch normalization ----------------------------------------------------------

// Sums a tensor over the processes of a job (see global_moments_hook.h), differentiably.
using GlobalSumFn = std::function<Tensor(const Tensor&)>;

// The inputs of synchronized_batch_norm; `scale` and `offset` may be empty.
struct SynchronizedBatchNormInputs {
  Tensor x{};         // this process's share of the batch
  Tensor scale{};     // any shape holding the per-channel values
  Tensor offset{};    // likewise
  Tensor mean{};      // the mean over the whole batch of all processes (keepdims shape)
  Tensor variance{};  // its biased variance
  Tensor count{};     // Float64 scalar: the whole batch's elements per channel
};

// Training batch normalization of this process's share x of a batch spread over several
// processes, with the statistics of the whole batch (computed by the caller, e.g. with
// ad::distributed::global_moments_and_count, as differentiable functions of x): y is the formula
// above (normalize_channels). The gradient is hand-written: each process's two per-channel sums
// (of dy and of dy * (x - mean)) are added over the processes by `global_sum`, and dx follows with
// the global count, as if one process held the whole batch (the objective being the sum of the
// processes' losses); dscale and doffset are this process's own sums. No gradient is sent to
// mean, variance or count, since dx already includes their dependence on x. Double backward works
// (through the statistics' and global_sum's own gradients).
[[nodiscard]] Tensor synchronized_batch_norm(const SynchronizedBatchNormInputs& inputs,
                                             double epsilon, const std::vector<int>& reduction_axes,
                                             const GlobalSumFn& global_sum);

// ---- layer, group and instance normalization ----------------------------------------------------

// The inputs of normalize; `scale` and `offset` may be empty.
struct NormalizeInputs {
  Tensor x{};
  Tensor scale{};   // broadcasts against x (e.g. along the normalized axes for layer norm)
  Tensor offset{};  // likewise
};

// y = (x - mean) * rsqrt(variance + epsilon) * scale + offset, with the mean and biased variance
// of x over `reduction_axes` (one statistic per index of the other axes: per example for layer
// norm, per example and group for group norm) and scale/offset broadcasting against x, in TF's
// nn.batch_normalization op order. Composed from channel_moments and nn::batch_normalization;
// with `fused` the gradient is hand-written instead: dx is fused_batch_norm_grad (training) applied
// to dy * scale, dscale = sum(dy * x_hat) and doffset = sum(dy) over the axes scale and offset
// were broadcast along. Values are identical either way; gradients agree to rounding, to any
// order.
[[nodiscard]] Tensor normalize(const NormalizeInputs& inputs, double epsilon,
                               const std::vector<int>& reduction_axes, bool fused = true);

}  // namespace nn

namespace detail {
// The variance half of moments, kept for code that used the former CenteredVariance op: the
// biased variance of x over `axes` (sorted). `centre` must be x's keepdims mean shape and dtype;
// the statistic is shift-invariant, so its value is only checked, and only x gets a gradient.
[[nodiscard]] Tensor centered_variance(const Tensor& x, const Tensor& centre,
                                       const std::vector<int>& axes, bool keepdims);
}  // namespace detail

}  // namespace ad
