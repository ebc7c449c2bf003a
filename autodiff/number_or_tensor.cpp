#include "autodiff/number_or_tensor.h"

#include "autodiff/error.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"

namespace ad {

double NumberOrTensor::number() const {
  if (const double* number = if_number()) return *number;
  throw ValueError(str("'", if_tensor()->name(), "' is a tensor, not a number"));
}

const Tensor& NumberOrTensor::tensor() const {
  if (const Tensor* t = if_tensor()) return *t;
  throw ValueError(str("the value ", *if_number(), " is a number, not a tensor"));
}

Tensor NumberOrTensor::to_tensor(Graph& graph, DType dtype) const {
  if (const double* number = if_number()) return scalar(graph, *number, dtype);
  const Tensor& t = tensor();
  return t.dtype() == dtype ? t : cast(t, dtype);
}

}  // namespace ad
