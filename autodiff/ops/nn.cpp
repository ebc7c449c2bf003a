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
#include "autodiff/ops/internal/softmax_rows.h"
#include "autodiff/ops/reduce.h"

namespace ad {

namespace {

using detail::kParallelElements;
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

// ---- softmax, log_softmax -----------------------------------------------------------------------

template <bool kLog>
void softmax_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Array& out = ctx.allocate_output(0, x.shape());
  if (x.size() == 0) return;
  const AxisSplit split = split_at(x.shape(), ctx.attrs<SoftmaxAttrs>().axis);
  dispatch_floating(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    GRADTAPE_ISA_KERNEL(softmax<T, kLog>)
    (split.outer, split.length, split.inner, x.data<T>().data(), out.mutable_data<T>().data());
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
    GRADTAPE_ISA_KERNEL(sparse_xent<T>)
    (batch, classes, logits.data<T>().data(), label.data(), probs.mutable_data<T>().data(),
     loss.mutable_data<T>().data());
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
    GRADTAPE_ISA_KERNEL(sparse_xent_grad<T>)
    (batch, classes, probs.data<T>().data(), dloss.data<T>().data(), label.data(),
     out.mutable_data<T>().data());
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
    GRADTAPE_ISA_KERNEL(softmax_xent<T>)
    (rows, classes, logits.data<T>().data(), labels.data<T>().data(),
     log_probs.mutable_data<T>().data(), loss.mutable_data<T>().data());
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
