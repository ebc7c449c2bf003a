// dense: variables (kernel [in, units], bias [units]) created under the layer's variable scope,
// and the call as one matmul over the flattened leading dims plus a broadcast bias.
#include "layers/dense.h"

#include <optional>

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/matmul.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

std::string label(const std::string& scope) { return str("dense '", scope, "'"); }

}  // namespace

Dense::Dense(std::int64_t units, DenseOptions options)
    : units_(units), options_(std::move(options)) {
  if (units_ <= 0) {
    throw ValueError(str("dense", options_.name.empty() ? "" : " '" + options_.name + "'",
                         ": units must be a positive integer, got ", units_));
  }
}

void Dense::build(const Tensor& inputs) {
  const std::string who = label(scope_name());
  const Shape& shape = inputs.shape();
  if (shape.rank() < 2) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has rank ", shape.rank(), " (shape ",
                         shape,
                         "); expected rank >= 2 ([batch, features]; use ad::expand_dims "
                         "or ad::reshape for a single example)"));
  }
  detail::require_floating(inputs, who);
  input_dim_ = shape[shape.rank() - 1];
  if (input_dim_ < 0) {
    throw ValueError(str(who, ": the last dimension of the input must be known, but '",
                         inputs.name(), "' has shape ", shape,
                         " (reshape it to a known feature size first)"));
  }
  dtype_ = inputs.dtype();
  detail::KernelAndBias variables =
      detail::create_kernel_and_bias(inputs.graph(), Shape{input_dim_, units_}, dtype_, options_);
  kernel_ = variables.kernel;
  bias_ = variables.bias;
  mutable_losses() = std::move(variables.losses);
}

void Dense::check_input(const Tensor& inputs) const {
  const Shape& shape = inputs.shape();
  const std::string who = label(scope_name());
  if (shape.rank() < 2) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has rank ", shape.rank(), " (shape ",
                         shape, "); expected rank >= 2"));
  }
  if (shape[shape.rank() - 1] != input_dim_) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has ", shape[shape.rank() - 1],
                         " features on its last axis (shape ", shape,
                         "), but the layer was built for ", input_dim_, " (kernel ",
                         kernel_.shape(), ")"));
  }
  detail::require_built_dtype(inputs, dtype_, who);
}

Tensor Dense::operator()(const Tensor& inputs) {
  if (!inputs) throw ValueError("dense: the input is an empty Tensor");
  return call_in_scope(
      inputs,
      [&](std::optional<VariableScope>& scope, Graph& graph) {
        detail::open_layer_scope(scope, graph, functional_, options_.name, options_.reuse, "dense");
      },
      [&] { return call(inputs); });
}

Tensor Dense::call(const Tensor& inputs) {
  Graph& graph = inputs.graph();
  const Shape& shape = inputs.shape();
  const int rank = shape.rank();
  const Tensor kernel = kernel_.value();
  Tensor outputs;
  if (rank == 2) {
    outputs = matmul(inputs, kernel);
  } else {
    // TF's tensordot: one GEMM over all leading dims, then the leading dims back.
    const Tensor flat = matmul(reshape(inputs, Shape{-1, input_dim_}), kernel);
    Shape out_shape = shape;
    out_shape[rank - 1] = units_;
    int unknown = 0;
    for (int d = 0; d < rank; ++d) unknown += out_shape[d] < 0 ? 1 : 0;
    if (unknown <= 1) {
      outputs = reshape(flat, out_shape);
    } else {
      const Tensor leading = slice(ad::shape(inputs), {0}, {rank - 1});
      const Tensor units = constant(graph, Array::vector<std::int64_t>({units_}));
      outputs = reshape(flat, concat({leading, units}, 0));
    }
  }
  if (bias_) outputs = outputs + bias_.value();
  if (options_.activation) outputs = options_.activation(outputs);
  if (options_.activity_regularizer) {
    mutable_losses().push_back(detail::add_activity_loss(options_.activity_regularizer, outputs));
  }
  return outputs;
}

Tensor dense(const Tensor& inputs, std::int64_t units, const DenseOptions& options) {
  Dense layer(units, options);
  layer.functional_ = true;
  return layer(inputs);
}

}  // namespace ad::layers
