// ad::NumberOrTensor: an argument TF accepts either as a Python number or as a tensor (batch
// norm's momentum and renorm clipping, an optimizer's hyper-parameters, a loss's weights). A number
// stays a double until the op knows the dtype it needs, then converts once; a tensor is cast when
// its dtype differs. What else a tensor must be (a scalar, floating) is the using op's to check
// and name in its error (an empty Tensor included), so the type itself accepts any Tensor.
#pragma once

#include <variant>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

class Graph;

class NumberOrTensor {
 public:
  NumberOrTensor(double value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  NumberOrTensor(Tensor value) : value_(value) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool is_tensor() const { return std::holds_alternative<Tensor>(value_); }
  [[nodiscard]] bool is_number() const { return !is_tensor(); }
  // The number, or nullptr when this is a Tensor (and the reverse).
  [[nodiscard]] const double* if_number() const { return std::get_if<double>(&value_); }
  [[nodiscard]] const Tensor* if_tensor() const { return std::get_if<Tensor>(&value_); }
  // The number; ValueError when this is a Tensor.
  [[nodiscard]] double number() const;
  // The Tensor; ValueError when this is a number.
  [[nodiscard]] const Tensor& tensor() const;
  // The value as a Tensor of `dtype` in `graph`: a scalar constant converted once from the
  // double, or the tensor, cast when its dtype differs.
  [[nodiscard]] Tensor to_tensor(Graph& graph, DType dtype) const;

 private:
  std::variant<double, Tensor> value_;
};

}  // namespace ad
