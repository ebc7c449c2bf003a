// Regularizers, composed from differentiable ops so their gradients come from the tape.
#include "autodiff/regularizers.h"

#include "autodiff/error.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"

namespace ad::regularizers {

namespace {

void check_input(const char* what, const Tensor& w) {
  if (!w) throw ValueError(str(what, " regularizer: the value is an empty Tensor"));
  if (!is_floating(w.dtype())) {
    throw ValueError(str(what, " regularizer: '", w.name(), "' is ", w.dtype(),
                         "; regularizers apply to float32 or float64 values"));
  }
}

}  // namespace

Regularizer l1(double scale) { return l1_l2(scale, 0.0); }

Regularizer l2(double scale) { return l1_l2(0.0, scale); }

Regularizer l1_l2(double l1, double l2) {
  return [l1, l2](const Tensor& w) {
    check_input(l1 != 0 && l2 != 0 ? "l1_l2" : (l1 != 0 ? "l1" : "l2"), w);
    Tensor loss;
    // Keras starts from 0 and adds the present terms; skipping the "0 +" changes no value.
    if (l1 != 0) loss = scalar_like(w, l1) * reduce_sum(abs(w));
    if (l2 != 0) {
      const Tensor term = scalar_like(w, l2) * reduce_sum(square(w));
      loss = loss ? loss + term : term;
    }
    return loss ? loss : scalar_like(w, 0.0);
  };
}

}  // namespace ad::regularizers
