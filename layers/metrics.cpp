// Batch accuracy metrics: accuracy composed from equal/cast/reductions, and an InTopK op.
#include "layers/metrics.h"

#include <cmath>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "layers/internal/layer_util.h"

namespace ad::metrics {

namespace {

using layers::detail::div_no_nan;

struct InTopKAttrs {
  std::int64_t k = 1;
};

void in_top_k_kernel(KernelContext& ctx) {
  const Array& predictions = ctx.input(0);
  const Array& labels = ctx.input(1);
  const std::int64_t batch = predictions.shape()[0];
  const std::int64_t classes = predictions.shape()[1];
  if (labels.shape() != Shape{batch}) {
    ctx.fail(str("labels ", labels.shape(), " do not match predictions ", predictions.shape(),
                 " (expected [", batch, "])"));
  }
  const std::int64_t k = ctx.attrs<InTopKAttrs>().k;
  Array& out = ctx.allocate_output(0, Shape{batch});
  bool* hit = out.mutable_data<bool>().data();
  const std::int64_t* target = labels.data<std::int64_t>().data();
  dispatch_floating(predictions.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* scores = predictions.data<T>().data();
    for (std::int64_t b = 0; b < batch; ++b) {
      const T* row = scores + b * classes;
      const std::int64_t t = target[b];
      if (t < 0 || t >= classes) {
        hit[b] = false;
        continue;
      }
      bool finite = true;
      std::int64_t higher = 0;
      for (std::int64_t c = 0; c < classes; ++c) {
        finite = finite && std::isfinite(row[c]);
        higher += row[c] > row[t] ? 1 : 0;
      }
      hit[b] = finite && higher < k;
    }
  });
}

const OpDef kInTopKOp{.name = "InTopK", .kernel = in_top_k_kernel};

}  // namespace

Tensor accuracy(const Tensor& labels, const Tensor& predictions, const Tensor& weights) {
  if (!labels || !predictions) throw ValueError("accuracy: labels or predictions is empty");
  if (!labels.shape().is_compatible_with(predictions.shape())) {
    throw ValueError(str("accuracy: labels ", labels.shape(), " and predictions ",
                         predictions.shape(),
                         " must have the same shape (pass class indices, e.g. "
                         "ad::argmax(logits, 1), not the logits)"));
  }
  const NameScope scope(labels.graph(), "accuracy");
  const Tensor same =
      predictions.dtype() == labels.dtype() ? predictions : cast(predictions, labels.dtype());
  const Tensor correct = cast(equal(same, labels), DType::Float32);
  if (!weights) {
    return div_no_nan(reduce_sum(correct), cast(size(correct), DType::Float32));
  }
  const Tensor w = cast(weights, DType::Float32) * ones_like(correct);
  if (!w.shape().is_compatible_with(correct.shape())) {
    throw ValueError(
        str("accuracy: weights ", weights.shape(), " do not broadcast to labels ", labels.shape()));
  }
  return div_no_nan(reduce_sum(correct * w), reduce_sum(w));
}

Tensor in_top_k(const Tensor& predictions, const Tensor& labels, std::int64_t k) {
  if (!labels || !predictions) throw ValueError("in_top_k: labels or predictions is empty");
  const std::string node = predictions.graph().unique_name(kInTopKOp.name, false);
  const auto fail = [&](const std::string& what) {
    throw ValueError(str("in_top_k '", node, "': ", what));
  };
  if (!is_floating(predictions.dtype()) || predictions.shape().rank() != 2) {
    fail(str("predictions '", predictions.name(), "' ", predictions.dtype(), predictions.shape(),
             " must be float32 or float64 [batch, classes]"));
  }
  if (!is_integer(labels.dtype()) || labels.shape().rank() != 1) {
    fail(str("labels '", labels.name(), "' ", labels.dtype(), labels.shape(),
             " must be int64, int32 or uint8 class indices [batch]"));
  }
  if (!labels.shape().is_compatible_with(Shape{predictions.shape()[0]})) {
    fail(str("labels ", labels.shape(), " do not match predictions ", predictions.shape()));
  }
  if (k < 1) fail(str("k must be positive, got ", k));
  const Tensor inputs[] = {predictions,
                           labels.dtype() == DType::Int64 ? labels : cast(labels, DType::Int64)};
  return predictions.graph().record1(kInTopKOp, inputs,
                                     {DType::Bool, Shape{predictions.shape()[0]}}, InTopKAttrs{k});
}

Tensor top_k_accuracy(const Tensor& labels, const Tensor& predictions, std::int64_t k) {
  if (!labels || !predictions) throw ValueError("top_k_accuracy: labels or predictions is empty");
  const NameScope scope(predictions.graph(), "top_k_accuracy");
  const Tensor hits = cast(in_top_k(predictions, labels, k), DType::Float32);
  return div_no_nan(reduce_sum(hits), cast(size(hits), DType::Float32));
}

}  // namespace ad::metrics
