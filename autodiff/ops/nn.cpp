// Neural-network ops: softmax and log_softmax along any axis, the fused cross-entropy kernels
// (whose hidden second output lets the backward pass skip recomputing the softmax), l2_loss, and
// TF's batch_normalization formula composed from elementwise ops. ad::moments lives in
// normalization.cpp.
#include "autodiff/ops/nn.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/internal/fixed_lanes.h"
#include "autodiff/ops/internal/index_values.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

using detail::kParallelElements;
// Columns handled together when softmax runs along a non-last axis: the running max and sum of a
// stripe stay in registers/L1 while the loop walks down the axis one contiguous row at a time.
constexpr std::int64_t kStripe = 64;
// l2_loss sums fixed-size blocks (boundaries independent of the thread count) and then adds the
// block sums in order, so its result is bitwise identical with any number of threads.
constexpr std::int64_t kSumBlock = 4096;

struct SoftmaxAttrs {
  int axis = 0;  // normalized, in [0, rank)
};

// ---- shared checks ------------------------------------------------------------------------------

// "Op 'name'" for the node `op` is about to record, so build-time messages read like run-time ones.
std::string op_label(const OpDef& op, Graph& graph) {
  return detail::op_label(graph, op.name, op.name);
}

std::string describe(const Tensor& t) {
  return str("'", t.name(), "' (", t.dtype(), t.shape(), ")");
}

void require_present(std::string_view what, std::string_view arg, const Tensor& t) {
  if (!t) throw ValueError(str(what, ": ", arg, " is an empty Tensor"));
}

void require_floating(std::string_view what, std::string_view arg, const Tensor& t) {
  require_present(what, arg, t);
  if (!is_floating(t.dtype())) {
    throw ValueError(str(what, ": ", arg, " ", describe(t), " must be float32 or float64"));
  }
}

// The run-time layout of `shape` around `axis`: outer blocks, the axis length, inner stride.
struct AxisSplit {
  std::int64_t outer = 1;
  std::int64_t length = 1;
  std::int64_t inner = 1;
};

AxisSplit split_at(const Shape& shape, int axis) {
  AxisSplit s;
  for (int d = 0; d < axis; ++d) s.outer *= shape[d];
  s.length = shape[axis];
  for (int d = axis + 1; d < shape.rank(); ++d) s.inner *= shape[d];
  return s;
}

// ---- exp for the softmax family ----------------------------------------------------------------

// a where `take_a`, else b. Written with integer masks because GCC will not if-convert a float
// select under the default -ftrapping-math, which would keep the loops below from vectorizing.
inline float blend(bool take_a, float a, float b) {
  const std::int32_t mask = -static_cast<std::int32_t>(take_a);
  return std::bit_cast<float>((std::bit_cast<std::int32_t>(a) & mask) |
                              (std::bit_cast<std::int32_t>(b) & ~mask));
}

// exp(x) for float32 in a form the compiler vectorizes (glibc's expf is a scalar call): Cephes'
// expf, i.e. x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact reduction), a degree-7
// polynomial for exp(r), and 2^n assembled in the exponent bits. Within 1 ulp of the correctly
// rounded value for every x <= 0 whose exp is a normal float (checked exhaustively in steps of 7
// ulps); 0 below that, NaN for NaN. Softmax only ever passes x - max(x) <= 0.
inline float exp_vectorizable(float x) {
  constexpr float kLowest = -87.3365447505531F;  // log(FLT_MIN)
  constexpr float kHighest = 88.3762626647949F;  // keeps n <= 127
  const bool underflows = x < kLowest;
  const bool is_nan = x != x;
  float clamped = blend(underflows, kLowest, x);
  clamped = blend(clamped > kHighest, kHighest, clamped);
  clamped = blend(is_nan, 0.0F, clamped);
  // Round to nearest by adding and removing 1.5 * 2^23.
  const float n = (clamped * 1.44269504088896341F + 12582912.0F) - 12582912.0F;
  const float r = (clamped - n * 0.693359375F) - n * -2.12194440e-4F;
  float p = 1.9875691500e-4F;
  p = p * r + 1.3981999507e-3F;
  p = p * r + 8.3334519073e-3F;
  p = p * r + 4.1665795894e-2F;
  p = p * r + 1.6666665459e-1F;
  p = p * r + 5.0000001201e-1F;
  p = p * (r * r) + r + 1.0F;
  const float scale = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
  return blend(is_nan, x, blend(underflows, 0.0F, p * scale));
}

template <class T>
T exp_shifted(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_vectorizable(x);
  } else {
    return std::exp(x);
  }
}

// ---- row primitives -----------------------------------------------------------------------------

// Largest of x[0..n), n >= 1.
template <class T>
T row_max(const T* x, std::int64_t n) {
  return detail::fixed_lane_max(x, n);
}

// Sum of exp(x[i] - shift), accumulated in double in fixed lanes; with kStore the exponentials go
// to e[i].
template <class T, bool kStore>
double exp_sum(const T* x, T shift, T* e, std::int64_t n) {
  return detail::fixed_lane_sum(n, [&](std::int64_t i) {
    const T v = exp_shifted(x[i] - shift);
    if constexpr (kStore) e[i] = v;
    return static_cast<double>(v);
  });
}

// softmax (or log_softmax) of one contiguous row: one pass for the max, one for the exponentials
// and their sum, one to normalize. Shifting by the max keeps every exp() in (0, 1].
template <class T, bool kLog>
void softmax_row(const T* x, T* y, std::int64_t n) {
  const T m = row_max(x, n);
  if constexpr (kLog) {
    const double log_sum = std::log(exp_sum<T, false>(x, m, nullptr, n));
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<T>(static_cast<double>(x[i] - m) - log_sum);
    }
  } else {
    const double inv_sum = 1.0 / exp_sum<T, true>(x, m, y, n);
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(static_cast<double>(y[i]) * inv_sum);
  }
}

// The same along a non-last axis, for `width` (<= kStripe) adjacent columns at once: x and y point
// at column 0 of the first of `length` rows, `stride` elements apart.
template <class T, bool kLog>
void softmax_stripe(const T* x, T* y, std::int64_t length, std::int64_t stride,
                    std::int64_t width) {
  std::array<T, kStripe> m{};
  std::array<double, kStripe> s{};
  for (std::int64_t c = 0; c < width; ++c) m[c] = x[c];
  for (std::int64_t a = 1; a < length; ++a) {
    const T* row = x + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) m[c] = row[c] > m[c] ? row[c] : m[c];
  }
  for (std::int64_t a = 0; a < length; ++a) {
    const T* row = x + a * stride;
    T* out = y + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) {
      const T e = exp_shifted(row[c] - m[c]);
      if constexpr (!kLog) out[c] = e;
      s[c] += static_cast<double>(e);
    }
  }
  for (std::int64_t c = 0; c < width; ++c) s[c] = kLog ? std::log(s[c]) : 1.0 / s[c];
  for (std::int64_t a = 0; a < length; ++a) {
    const T* row = x + a * stride;
    T* out = y + a * stride;
#pragma omp simd
    for (std::int64_t c = 0; c < width; ++c) {
      if constexpr (kLog) {
        out[c] = static_cast<T>(static_cast<double>(row[c] - m[c]) - s[c]);
      } else {
        out[c] = static_cast<T>(static_cast<double>(out[c]) * s[c]);
      }
    }
  }
}

// ---- softmax, log_softmax -----------------------------------------------------------------------

template <bool kLog>
void softmax_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  if (x.size() == 0) return;
  const AxisSplit split = split_at(x.shape(), ctx.attrs<SoftmaxAttrs>().axis);
  const bool parallel = x.size() >= kParallelElements;
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    T* y = out.mutable_data<T>().data();
    if (split.inner == 1) {
      detail::for_each_index(split.outer, parallel, [&](std::int64_t r) {
        softmax_row<T, kLog>(in + r * split.length, y + r * split.length, split.length);
      });
      return;
    }
    const std::int64_t stripes = (split.inner + kStripe - 1) / kStripe;
    const std::int64_t block = split.length * split.inner;
    detail::for_each_index(split.outer * stripes, parallel, [&](std::int64_t u) {
      const std::int64_t offset = (u / stripes) * block + (u % stripes) * kStripe;
      const std::int64_t width = std::min(kStripe, split.inner - (u % stripes) * kStripe);
      softmax_stripe<T, kLog>(in + offset, y + offset, split.length, split.inner, width);
    });
  });
}

// y * (dy - sum(dy * y)): the softmax Jacobian (diag(y) - y y^T) applied to dy, along `axis`.
Tensor softmax_jvp(const Tensor& y, const Tensor& dy, int axis) {
  return mul(y, sub(dy, reduce_sum(mul(dy, y), {axis}, /*keepdims=*/true)));
}

void softmax_gradient(GradContext& g) {
  g.set(0, softmax_jvp(g.output(0), g.grad_output(0), g.attrs<SoftmaxAttrs>().axis));
}

// d log_softmax: dy - softmax * sum(dy), with softmax = exp(y).
void log_softmax_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const int axis = g.attrs<SoftmaxAttrs>().axis;
  g.set(0, sub(dy, mul(exp(g.output(0)), reduce_sum(dy, {axis}, /*keepdims=*/true))));
}

const OpDef kSoftmaxOp{
    .name = "Softmax", .kernel = softmax_kernel<false>, .gradient = softmax_gradient};
const OpDef kLogSoftmaxOp{
    .name = "LogSoftmax", .kernel = softmax_kernel<true>, .gradient = log_softmax_gradient};

Tensor record_softmax(const OpDef& op, const Tensor& logits, int axis) {
  require_floating(op.name, "logits", logits);
  if (logits.shape().rank() == 0) {
    throw ValueError(str(op_label(op, logits.graph()), ": logits ", describe(logits),
                         " is a scalar; softmax needs at least one axis"));
  }
  const int a = normalize_axis(axis, logits.shape().rank(), op.name.data());
  const Tensor inputs[] = {logits};
  return logits.graph().record1(op, inputs, {logits.dtype(), logits.shape()}, SoftmaxAttrs{a});
}

// ---- sparse softmax cross-entropy ---------------------------------------------------------------

// Fails naming the first label outside [0, classes).
void check_labels(const KernelContext& ctx, std::span<const std::int64_t> labels,
                  std::int64_t classes) {
  for (std::size_t b = 0; b < labels.size(); ++b) {
    if (labels[b] < 0 || labels[b] >= classes) {
      ctx.fail(str("label ", labels[b], " in row ", b, " is out of range: logits have ", classes,
                   " classes, so labels must lie in [0, ", classes, ")"));
    }
  }
}

void check_batch(const KernelContext& ctx, const Shape& labels, const Shape& logits) {
  if (labels[0] != logits[0]) {
    ctx.fail(str("labels ", labels, " and logits ", logits, " disagree on the batch size (",
                 labels[0], " != ", logits[0], ")"));
  }
}

// For the dense cross-entropies, whose labels are shaped like the logits.
void check_same_shape(const KernelContext& ctx, const Shape& labels, const Shape& logits) {
  if (!(labels == logits)) {
    ctx.fail(str("labels ", labels, " and logits ", logits, " must have the same shape"));
  }
}

// Outputs: 0 the loss per row, logsumexp(logits) - logits[label]; 1 (hidden) softmax(logits),
// which the gradient reuses.
void sparse_xent_kernel(KernelContext& ctx) {
  const Array& labels = ctx.input(0);
  const Array& logits = ctx.input(1);
  check_batch(ctx, labels.shape(), logits.shape());
  const std::int64_t batch = logits.shape()[0];
  const std::int64_t classes = logits.shape()[1];
  std::vector<std::int64_t> widened;
  const auto label = detail::index_values(labels, widened);
  check_labels(ctx, label, classes);
  Array& loss = ctx.allocate_output(0, Shape{batch});
  Array& probs = ctx.allocate_output(1, logits.shape());
  dispatch_floating(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>().data();
    T* p = probs.mutable_data<T>().data();
    T* l = loss.mutable_data<T>().data();
    detail::for_each_index(batch, logits.size() >= kParallelElements, [&](std::int64_t b) {
      const T* row = x + b * classes;
      T* prob = p + b * classes;
      const T m = row_max(row, classes);
      const double sum = exp_sum<T, true>(row, m, prob, classes);
      const double inv_sum = 1.0 / sum;
#pragma omp simd
      for (std::int64_t j = 0; j < classes; ++j) {
        prob[j] = static_cast<T>(static_cast<double>(prob[j]) * inv_sum);
      }
      const auto target = static_cast<std::size_t>(label[static_cast<std::size_t>(b)]);
      l[b] = static_cast<T>(std::log(sum) - static_cast<double>(row[target] - m));
    });
  });
}

// (probs - one_hot(labels)) * dloss[:, None] in one pass: the backward of the sparse
// cross-entropy, given the softmax saved by the forward kernel.
void sparse_xent_grad_kernel(KernelContext& ctx) {
  const Array& labels = ctx.input(0);
  const Array& probs = ctx.input(1);
  const Array& dloss = ctx.input(2);
  check_batch(ctx, labels.shape(), probs.shape());
  check_batch(ctx, dloss.shape(), probs.shape());
  const std::int64_t batch = probs.shape()[0];
  const std::int64_t classes = probs.shape()[1];
  std::vector<std::int64_t> widened;
  const auto label = detail::index_values(labels, widened);
  check_labels(ctx, label, classes);
  Array& out = ctx.allocate_output(0, probs.shape());
  dispatch_floating(probs.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = probs.data<T>().data();
    const T* d = dloss.data<T>().data();
    T* g = out.mutable_data<T>().data();
    detail::for_each_index(batch, probs.size() >= kParallelElements, [&](std::int64_t b) {
      const T* prob = p + b * classes;
      T* grad = g + b * classes;
      const T scale = d[b];
#pragma omp simd
      for (std::int64_t j = 0; j < classes; ++j) grad[j] = prob[j] * scale;
      const auto target = label[static_cast<std::size_t>(b)];
      grad[target] = (prob[target] - T{1}) * scale;
    });
  });
}

Tensor sparse_xent_grad(const Tensor& labels, const Tensor& probs, const Tensor& dloss);

// The grad op is linear in probs and in dloss; the dloss part reuses the op with dloss = 1 to get
// probs - one_hot without materializing the one-hot matrix separately.
void sparse_xent_grad_gradient(GradContext& g) {
  const Tensor dgrad = g.grad_output(0);
  const Tensor probs = g.input(1);
  const Tensor dloss = g.input(2);
  if (g.wants(1)) g.set(1, mul(dgrad, expand_dims(dloss, 1)));
  if (g.wants(2)) {
    const Tensor residual = sparse_xent_grad(g.input(0), probs, ones_like(dloss));
    g.set(2, reduce_sum(mul(residual, dgrad), {1}));
  }
}

// Output 0 contributes (softmax - one_hot) * dloss; output 1, the softmax itself, contributes its
// Jacobian-vector product (it only receives a gradient when a gradient of this op is itself
// differentiated, since users never see output 1).
void sparse_xent_gradient(GradContext& g) {
  const Tensor probs = g.output(1);
  if (const Tensor dloss = g.grad_output(0)) g.set(1, sparse_xent_grad(g.input(0), probs, dloss));
  if (const Tensor dprobs = g.grad_output(1)) g.set(1, softmax_jvp(probs, dprobs, 1));
}

// The labels may be Int64, Int32 or UInt8.
const OpDef kSparseXentOp{.name = "SparseSoftmaxCrossEntropyWithLogits",
                          .kernel = sparse_xent_kernel,
                          .gradient = sparse_xent_gradient,
                          .narrow_integers = true};
const OpDef kSparseXentGradOp{.name = "SparseSoftmaxCrossEntropyWithLogitsGrad",
                              .kernel = sparse_xent_grad_kernel,
                              .gradient = sparse_xent_grad_gradient,
                              .narrow_integers = true};

Tensor sparse_xent_grad(const Tensor& labels, const Tensor& probs, const Tensor& dloss) {
  const Tensor inputs[] = {labels, probs, dloss};
  return probs.graph().record1(kSparseXentGradOp, inputs, {probs.dtype(), probs.shape()});
}

// A dim known on either side (-1 when neither knows it).
std::int64_t merge_dim(std::int64_t a, std::int64_t b) { return a >= 0 ? a : b; }

// The build-time checks of the dense cross-entropies (float labels of the logits' dtype and
// shape); returns the shape both are known to have, each dim known on either side.
Shape check_labels_like_logits(const OpDef& op, const Tensor& labels, const Tensor& logits) {
  require_floating(op.name, "labels", labels);
  require_floating(op.name, "logits", logits);
  const std::string label = op_label(op, logits.graph());
  if (labels.dtype() != logits.dtype()) {
    throw ValueError(str(label, ": labels ", describe(labels), " and logits ", describe(logits),
                         " have different dtypes; use ad::cast"));
  }
  if (!labels.shape().is_compatible_with(logits.shape())) {
    throw ValueError(str(label, ": labels ", labels.shape(), " and logits ", logits.shape(),
                         " must have the same shape"));
  }
  Shape shape = logits.shape();
  for (int d = 0; d < shape.rank(); ++d) shape[d] = merge_dim(shape[d], labels.shape()[d]);
  return shape;
}

// ---- dense softmax cross-entropy ----------------------------------------------------------------

// Outputs: 0 the loss per row, -sum(labels * log_softmax(logits)); 1 (hidden) log_softmax(logits),
// which the gradient reuses. Rows run along the last axis.
void softmax_xent_kernel(KernelContext& ctx) {
  const Array& labels = ctx.input(0);
  const Array& logits = ctx.input(1);
  check_same_shape(ctx, labels.shape(), logits.shape());
  const Shape& shape = logits.shape();
  const std::int64_t classes = shape[shape.rank() - 1];
  Shape loss_shape = shape;
  loss_shape.erase(shape.rank() - 1);
  Array& loss = ctx.allocate_output(0, loss_shape);
  Array& log_probs = ctx.allocate_output(1, shape);
  const std::int64_t rows = loss.size();
  dispatch_floating(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>().data();
    const T* z = labels.data<T>().data();
    T* lp = log_probs.mutable_data<T>().data();
    T* l = loss.mutable_data<T>().data();
    detail::for_each_index(rows, logits.size() >= kParallelElements, [&](std::int64_t r) {
      const T* row = x + r * classes;
      const T* target = z + r * classes;
      T* out = lp + r * classes;
      if (classes == 0) {
        l[r] = T{0};
        return;
      }
      const T m = row_max(row, classes);
      const double log_sum = std::log(exp_sum<T, false>(row, m, nullptr, classes));
      const double cross = detail::fixed_lane_sum(classes, [&](std::int64_t j) {
        const double log_prob = static_cast<double>(row[j] - m) - log_sum;
        out[j] = static_cast<T>(log_prob);
        return static_cast<double>(target[j]) * log_prob;
      });
      l[r] = static_cast<T>(-cross);
    });
  });
}

// With p = exp(log_softmax), the exact gradients are
//   dlogits = (p * sum(labels) - labels) * dloss,   dlabels = -log_softmax * dloss;
// TF's kernel uses p - labels, which is the same when each row of labels sums to 1.
void softmax_xent_gradient(GradContext& g) {
  const Tensor labels = g.input(0);
  const Tensor log_probs = g.output(1);
  const int last = log_probs.shape().rank() - 1;
  const Tensor dloss = g.grad_output(0);
  const Tensor dlog_probs = g.grad_output(1);
  const Tensor probs = g.wants(1) ? exp(log_probs) : Tensor();
  if (dloss) {
    const Tensor d = expand_dims(dloss, last);
    if (g.wants(0)) g.set(0, neg(mul(log_probs, d)));
    if (g.wants(1)) {
      const Tensor label_mass = reduce_sum(labels, {last}, /*keepdims=*/true);
      g.set(1, mul(sub(mul(probs, label_mass), labels), d));
    }
  }
  if (dlog_probs && g.wants(1)) {
    g.set(1, sub(dlog_probs, mul(probs, reduce_sum(dlog_probs, {last}, /*keepdims=*/true))));
  }
}

const OpDef kSoftmaxXentOp{.name = "SoftmaxCrossEntropyWithLogits",
                           .kernel = softmax_xent_kernel,
                           .gradient = softmax_xent_gradient};

// ---- sigmoid cross-entropy ----------------------------------------------------------------------

// max(x, 0) - x z + log1p(exp(-|x|)): equal to -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)),
// without overflow for any x.
void sigmoid_xent_kernel(KernelContext& ctx) {
  const Array& labels = ctx.input(0);
  const Array& logits = ctx.input(1);
  check_same_shape(ctx, labels.shape(), logits.shape());
  Array& out = ctx.allocate_output(0, logits.shape());
  dispatch_floating(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data<T>().data();
    const T* z = labels.data<T>().data();
    T* y = out.mutable_data<T>().data();
    const std::int64_t n = logits.size();
    detail::for_each_element(n, [&](std::int64_t i) {
      const T positive = x[i] > T{0} ? x[i] : T{0};
      y[i] = positive - x[i] * z[i] + std::log1p(std::exp(-std::abs(x[i])));
    });
  });
}

// dlogits = dy * (sigmoid(x) - z), dlabels = -dy * x.
void sigmoid_xent_gradient(GradContext& g) {
  const Tensor dy = g.grad_output(0);
  const Tensor labels = g.input(0);
  const Tensor logits = g.input(1);
  if (g.wants(0)) g.set(0, neg(mul(dy, logits)));
  if (g.wants(1)) g.set(1, mul(dy, sub(sigmoid(logits), labels)));
}

const OpDef kSigmoidXentOp{.name = "SigmoidCrossEntropyWithLogits",
                           .kernel = sigmoid_xent_kernel,
                           .gradient = sigmoid_xent_gradient};

// ---- l2_loss ------------------------------------------------------------------------------------

template <class T>
double block_sum_of_squares(const T* x, std::int64_t n) {
  return detail::fixed_lane_sum(
      n, [&](std::int64_t i) { return static_cast<double>(x[i]) * static_cast<double>(x[i]); });
}

void l2_loss_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, Shape{});
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>().data();
    const std::int64_t n = x.size();
    const std::int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
    double total = 0;
    if (blocks <= 1) {
      total = block_sum_of_squares(in, n);
    } else {
      // Block sums land in a fixed slot each and are added in order afterwards.
      thread_local std::vector<double> partial;
      partial.assign(static_cast<std::size_t>(blocks), 0.0);
      double* slots = partial.data();
      detail::for_each_index(blocks, n >= kParallelElements, [&](std::int64_t b) {
        const std::int64_t begin = b * kSumBlock;
        slots[b] = block_sum_of_squares(in + begin, std::min(kSumBlock, n - begin));
      });
      for (std::int64_t b = 0; b < blocks; ++b) total += slots[b];
    }
    out.mutable_data<T>()[0] = static_cast<T>(total / 2);
  });
}

void l2_loss_gradient(GradContext& g) { g.set(0, mul(g.input(0), g.grad_output(0))); }

const OpDef kL2LossOp{.name = "L2Loss", .kernel = l2_loss_kernel, .gradient = l2_loss_gradient};

// ---- batch_normalization ------------------------------------------------------------------------

// ValueError unless `arg` has x's dtype and broadcasts against x.
void check_batch_norm_argument(std::string_view arg, const Tensor& t, const Tensor& x) {
  if (t.dtype() != x.dtype()) {
    throw ValueError(str("batch_normalization: ", arg, " ", describe(t), " does not match x ",
                         describe(x), " in dtype; use ad::cast"));
  }
  try {
    (void)broadcast_static_shape("batch_normalization", t.shape(), x.shape());
  } catch (const ValueError&) {
    throw ValueError(str("batch_normalization: ", arg, " ", describe(t),
                         " does not broadcast against x ", describe(x)));
  }
}

}  // namespace

namespace nn {

Tensor batch_normalization(const Tensor& x, const Tensor& mean, const Tensor& variance,
                           const Tensor& offset, const Tensor& scale, double epsilon) {
  require_floating("batch_normalization", "x", x);
  require_present("batch_normalization", "mean", mean);
  require_present("batch_normalization", "variance", variance);
  check_batch_norm_argument("mean", mean, x);
  check_batch_norm_argument("variance", variance, x);
  if (offset) check_batch_norm_argument("offset", offset, x);
  if (scale) check_batch_norm_argument("scale", scale, x);
  const NameScope scope(x.graph(), "batchnorm");
  Tensor inv = rsqrt(add(variance, scalar_like(variance, epsilon)));
  if (scale) inv = mul(inv, scale);
  if (offset) return add(mul(x, inv), sub(offset, mul(mean, inv)));
  return sub(mul(x, inv), mul(mean, inv));
}

Tensor softmax(const Tensor& logits, int axis) { return record_softmax(kSoftmaxOp, logits, axis); }

Tensor log_softmax(const Tensor& logits, int axis) {
  return record_softmax(kLogSoftmaxOp, logits, axis);
}

Tensor sparse_softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits) {
  const OpDef& op = kSparseXentOp;
  require_present(op.name, "labels", labels);
  require_floating(op.name, "logits", logits);
  const std::string label = op_label(op, logits.graph());
  if (!is_integer(labels.dtype()) || labels.shape().rank() != 1) {
    throw ValueError(str(label, ": labels ", describe(labels),
                         " must be int64, int32 or uint8 class indices of rank 1 (shape [batch])"));
  }
  if (logits.shape().rank() != 2) {
    throw ValueError(
        str(label, ": logits ", describe(logits), " must have rank 2 (shape [batch, classes])"));
  }
  const std::int64_t labels_batch = labels.shape()[0];
  const std::int64_t logits_batch = logits.shape()[0];
  if (labels_batch >= 0 && logits_batch >= 0 && labels_batch != logits_batch) {
    throw ValueError(str(label, ": labels ", labels.shape(), " and logits ", logits.shape(),
                         " disagree on the batch size (", labels_batch, " != ", logits_batch, ")"));
  }
  const std::int64_t batch = merge_dim(labels_batch, logits_batch);
  const Tensor inputs[] = {labels, logits};
  return logits.graph()
      .record(op, inputs,
              {{logits.dtype(), Shape{batch}}, {logits.dtype(), Shape{batch, logits.shape()[1]}}})
      .front();
}

Tensor softmax_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits) {
  const OpDef& op = kSoftmaxXentOp;
  const Shape shape = check_labels_like_logits(op, labels, logits);
  if (shape.rank() == 0) {
    throw ValueError(str(op_label(op, logits.graph()), ": logits ", describe(logits),
                         " is a scalar; expected [batch, classes]"));
  }
  Shape loss_shape = shape;
  loss_shape.erase(shape.rank() - 1);
  const Tensor inputs[] = {labels, logits};
  return logits.graph()
      .record(op, inputs, {{logits.dtype(), loss_shape}, {logits.dtype(), shape}})
      .front();
}

Tensor sigmoid_cross_entropy_with_logits(const Tensor& labels, const Tensor& logits) {
  const OpDef& op = kSigmoidXentOp;
  const Shape shape = check_labels_like_logits(op, labels, logits);
  const Tensor inputs[] = {labels, logits};
  return logits.graph().record1(op, inputs, {logits.dtype(), shape});
}

Tensor l2_loss(const Tensor& x) {
  require_floating(kL2LossOp.name, "x", x);
  const Tensor inputs[] = {x};
  return x.graph().record1(kL2LossOp, inputs, {x.dtype(), Shape{}});
}

}  // namespace nn
}  // namespace ad
