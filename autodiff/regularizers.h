// Weight regularizers (Keras r2.4 semantics): callables Tensor -> scalar Tensor. A variable
// created with one adds regularizer(variable) to REGULARIZATION_LOSSES once, when it is created;
// ad::get_regularization_loss sums that collection.
#pragma once

#include "gradtape/autodiff/graph.h"

namespace ad::regularizers {

// scale * sum(|w|).
[[nodiscard]] Regularizer l1(double scale = 0.01);
// scale * sum(w^2) (no factor 1/2, unlike tf.nn.l2_loss).
[[nodiscard]] Regularizer l2(double scale = 0.01);
// l1 * sum(|w|) + l2 * sum(w^2); a term whose factor is 0 is left out (a scalar 0 when both are).
[[nodiscard]] Regularizer l1_l2(double l1 = 0.01, double l2 = 0.01);

}  // namespace ad::regularizers
