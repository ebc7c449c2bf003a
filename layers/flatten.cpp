// flatten: one reshape (preceded by a transpose for channels_first), with the feature count known
// statically when the trailing dims are.
#include "layers/flatten.h"

#include <optional>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/reduce.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

Tensor flatten(const Tensor& inputs, const FlattenOptions& options) {
  const std::string early = options.name.empty() ? "flatten" : str("flatten '", options.name, "'");
  if (!inputs) throw ValueError(str(early, ": the input is an empty Tensor"));
  const DataFormat format = options.data_format.resolve(early);
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), true, options.name, Reuse::kFalse, "flatten");
  const std::string who = str("flatten '", scope->name(), "'");
  const int rank = inputs.shape().rank();
  if (rank == 0) {
    throw ValueError(str(who, ": input '", inputs.name(),
                         "' is a scalar; flatten needs a batch dimension (rank >= 1)"));
  }
  if (rank == 1) return expand_dims(inputs, 1);
  Tensor x = inputs;
  if (format == DataFormat::kChannelsFirst && rank >= 3) {
    std::vector<int> perm{0};
    for (int d = 2; d < rank; ++d) perm.push_back(d);
    perm.push_back(1);
    x = transpose(x, perm);
  }
  std::int64_t features = 1;
  bool known = true;
  for (int d = 1; d < rank; ++d) {
    if (x.shape()[d] < 0) known = false;
    features *= x.shape()[d] < 0 ? 1 : x.shape()[d];
  }
  if (known) return reshape(x, Shape{x.shape()[0] >= 0 ? x.shape()[0] : -1, features});
  // Unknown trailing dims: [batch, prod(trailing dims)] from the run-time shape, which also
  // works for an empty batch (where a -1 could not be inferred).
  const Tensor dims = shape(x);
  const Tensor batch = slice(dims, {0}, {1});
  const Tensor count = reduce_prod(slice(dims, {1}, {-1}), {0}, true);
  return reshape(x, concat({batch, count}, 0));
}

}  // namespace ad::layers
