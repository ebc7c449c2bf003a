// layer_normalization, group_normalization and instance_normalization: axis resolution, the
// gamma/beta variables, and the reshapes that turn each into ad::nn::normalize over a set of
// reduction axes (see normalization.h for the semantics).
#include "layers/normalization.h"

#include <algorithm>
#include <optional>

#include "autodiff/error.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/normalization.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

// The parameters every member shares, whatever its options struct.
struct ParameterOptions {
  bool center;
  bool scale;
  Initializer beta_initializer;
  Initializer gamma_initializer;
  Regularizer beta_regularizer;
  Regularizer gamma_regularizer;
  Constraint beta_constraint;
  Constraint gamma_constraint;
  bool trainable;
};

template <class Options>
ParameterOptions parameter_options(const Options& o) {
  return {o.center,           o.scale,
          o.beta_initializer, o.gamma_initializer,
          o.beta_regularizer, o.gamma_regularizer,
          o.beta_constraint,  o.gamma_constraint,
          o.trainable};
}

struct Parameters {
  Tensor gamma;  // empty without scale
  Tensor beta;   // empty without center
};

// gamma ("gamma", ones) and beta ("beta", zeros) of `shape` in the current variable scope, read
// reshaped to `broadcast_shape`.
Parameters make_parameters(Graph& graph, const ParameterOptions& o, const Shape& shape,
                           const Shape& broadcast_shape, DType dtype) {
  auto variable = [&](const char* name, const Initializer& init, double fill,
                      const Regularizer& regularizer, const Constraint& constraint) {
    const Variable v = get_variable(graph, name,
                                    {.shape = shape,
                                     .dtype = dtype,
                                     .initializer = init ? init : initializers::constant(fill),
                                     .regularizer = regularizer,
                                     .constraint = constraint,
                                     .trainable = o.trainable});
    return v.value().shape() == broadcast_shape ? v.value() : reshape(v.value(), broadcast_shape);
  };
  Parameters p;
  if (o.scale) {
    p.gamma = variable("gamma", o.gamma_initializer, 1.0, o.gamma_regularizer, o.gamma_constraint);
  }
  if (o.center) {
    p.beta = variable("beta", o.beta_initializer, 0.0, o.beta_regularizer, o.beta_constraint);
  }
  return p;
}

// ValueError unless inputs is a floating Tensor of rank >= min_rank.
void check_inputs(const std::string& who, const Tensor& inputs, int min_rank) {
  if (!inputs) throw ValueError(str(who, ": the input is an empty Tensor"));
  if (!is_floating(inputs.dtype())) {
    throw ValueError(str(who, ": input '", inputs.name(), "' is ", inputs.dtype(),
                         "; expected float32 or float64"));
  }
  if (inputs.shape().rank() < min_rank) {
    throw ValueError(str(who, ": input '", inputs.name(), "' has shape ", inputs.shape(),
                         "; expected rank ", min_rank, " or more"));
  }
}

int resolve_axis(const std::string& who, int axis, const Shape& shape) {
  const int rank = shape.rank();
  const int resolved = axis < 0 ? axis + rank : axis;
  if (resolved < 0 || resolved >= rank) {
    throw ValueError(str(who, ": axis ", axis, " is out of range for input of shape ", shape,
                         " (rank ", rank, ")"));
  }
  if (shape[resolved] < 0) {
    throw ValueError(str(who, ": axis ", axis, " of input shape ", shape,
                         " has an unknown size; the parameters need it"));
  }
  return resolved;
}

std::string label(const char* layer, const std::string& scope) {
  return str(layer, " '", scope, "'");
}

// Group normalization under an open scope: x [..., C at axis, ...] viewed as
// [..., groups, C / groups, ...], normalized over every axis but the batch and the group axis.
Tensor group_norm(const Tensor& inputs, int groups, int axis_arg, double epsilon, bool fused,
                  const ParameterOptions& o, const std::string& who) {
  const Shape& shape = inputs.shape();
  const int axis = resolve_axis(who, axis_arg, shape);
  if (axis == 0) throw ValueError(str(who, ": axis ", axis_arg, " is the batch axis"));
  const std::int64_t channels = shape[axis];
  const std::int64_t g = groups == -1 ? channels : groups;
  if (g <= 0 || g > channels || channels % g != 0) {
    throw ValueError(str(who, ": ", channels, " channels on axis ", axis, " (input shape ", shape,
                         ") cannot be split into ", groups, " groups of equal size"));
  }
  Shape grouped;
  for (int d = 0; d < shape.rank(); ++d) {
    if (d > 0 && shape[d] < 0) {
      throw ValueError(str(who, ": input shape ", shape, " has an unknown size on axis ", d,
                           "; only the batch may be unknown"));
    }
    if (d == axis) {
      grouped.push_back(g);
      grouped.push_back(channels / g);
    } else {
      grouped.push_back(d == 0 && shape[0] < 0 ? -1 : shape[d]);
    }
  }
  Shape broadcast(std::vector<std::int64_t>(static_cast<std::size_t>(grouped.rank()), 1));
  broadcast[axis] = g;
  broadcast[axis + 1] = channels / g;
  std::vector<int> reduction_axes;
  for (int d = 1; d < grouped.rank(); ++d) {
    if (d != axis) reduction_axes.push_back(d);
  }
  const Parameters p =
      make_parameters(inputs.graph(), o, Shape{channels}, broadcast, inputs.dtype());
  const Tensor y =
      nn::normalize({.x = reshape(inputs, grouped), .scale = p.gamma, .offset = p.beta}, epsilon,
                    reduction_axes, fused);
  Shape back = shape;
  if (back[0] < 0) back[0] = -1;
  return reshape(y, back);
}

// The layers' bodies, run inside the layer's open variable scope `scope`.
Tensor layer_norm_in_scope(const Tensor& inputs, const LayerNormalizationOptions& options,
                           const std::string& scope) {
  const std::string who = label("layer_normalization", scope);
  const Shape& shape = inputs.shape();
  std::vector<int> axes;
  for (const int a : options.axis.axes()) {
    const int r = resolve_axis(who, a, shape);
    if (std::find(axes.begin(), axes.end(), r) != axes.end())
      throw ValueError(str(who, ": axis ", a, " is repeated (input shape ", shape, ")"));
    axes.push_back(r);
  }
  if (axes.empty()) throw ValueError(str(who, ": axis is an empty list"));
  std::sort(axes.begin(), axes.end());
  Shape param_shape;
  Shape broadcast(std::vector<std::int64_t>(static_cast<std::size_t>(shape.rank()), 1));
  for (const int a : axes) {
    param_shape.push_back(shape[a]);
    broadcast[a] = shape[a];
  }
  const Parameters p = make_parameters(inputs.graph(), parameter_options(options), param_shape,
                                       broadcast, inputs.dtype());
  return nn::normalize({.x = inputs, .scale = p.gamma, .offset = p.beta}, options.epsilon, axes,
                       options.fused);
}

Tensor group_norm_in_scope(const Tensor& inputs, const GroupNormalizationOptions& options,
                           const std::string& scope) {
  return group_norm(inputs, options.groups, options.axis, options.epsilon, options.fused,
                    parameter_options(options), label("group_normalization", scope));
}

Tensor instance_norm_in_scope(const Tensor& inputs, const InstanceNormalizationOptions& options,
                              const std::string& scope) {
  return group_norm(inputs, -1, options.axis, options.epsilon, options.fused,
                    parameter_options(options), label("instance_normalization", scope));
}

}  // namespace

Tensor layer_normalization(const Tensor& inputs, const LayerNormalizationOptions& options) {
  check_inputs("layer_normalization", inputs, 1);
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), true, options.name, options.reuse,
                           "layer_normalization");
  return layer_norm_in_scope(inputs, options, scope->name());
}

Tensor group_normalization(const Tensor& inputs, const GroupNormalizationOptions& options) {
  check_inputs("group_normalization", inputs, 2);
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), true, options.name, options.reuse,
                           "group_normalization");
  return group_norm_in_scope(inputs, options, scope->name());
}

Tensor instance_normalization(const Tensor& inputs, const InstanceNormalizationOptions& options) {
  check_inputs("instance_normalization", inputs, 2);
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), true, options.name, options.reuse,
                           "instance_normalization");
  return instance_norm_in_scope(inputs, options, scope->name());
}

// ---- class forms
// ---------------------------------------------------------------------------------

NormalizationLayer::NormalizationLayer(std::string name, Reuse reuse, const char* base_name,
                                       int min_rank, bool center, bool scale)
    : name_(std::move(name)),
      reuse_(reuse),
      base_name_(base_name),
      min_rank_(min_rank),
      center_(center),
      scale_(scale) {}

// The first call opens the layer's scope as the functional form would (uniquified default name)
// and creates gamma and beta; later calls re-enter that scope with reuse, so they read the same
// variables (get_variable's shape check refuses inputs with other normalized sizes).
Tensor NormalizationLayer::operator()(const Tensor& inputs) {
  check_inputs(base_name_, inputs, min_rank_);
  Graph& graph = inputs.graph();
  if (built() && &graph != graph_) {
    throw ValueError(str(label(base_name_, scope_name()), ": input '", inputs.name(),
                         "' belongs to another graph than the layer's variables"));
  }
  std::optional<VariableScope> scope;
  if (!built()) {
    detail::open_layer_scope(scope, graph, false, name_, reuse_, base_name_);
  } else {
    scope.emplace(graph, VariableScope::FullName{scope_name()}, Reuse::kTrue);
  }
  const std::string name = built() ? scope_name() : scope->name();
  const Tensor out = call(inputs, name);
  if (!built()) {
    mark_built(name);
    graph_ = &graph;
    if (scale_) gamma_ = get_variable_by_name(graph, name + "/gamma");
    if (center_) beta_ = get_variable_by_name(graph, name + "/beta");
  }
  return out;
}

LayerNormalization::LayerNormalization(LayerNormalizationOptions options)
    : NormalizationLayer(options.name, options.reuse, "layer_normalization", 1, options.center,
                         options.scale),
      options_(std::move(options)) {}

Tensor LayerNormalization::call(const Tensor& inputs, const std::string& scope) {
  return layer_norm_in_scope(inputs, options_, scope);
}

GroupNormalization::GroupNormalization(GroupNormalizationOptions options)
    : NormalizationLayer(options.name, options.reuse, "group_normalization", 2, options.center,
                         options.scale),
      options_(std::move(options)) {}

Tensor GroupNormalization::call(const Tensor& inputs, const std::string& scope) {
  return group_norm_in_scope(inputs, options_, scope);
}

InstanceNormalization::InstanceNormalization(InstanceNormalizationOptions options)
    : NormalizationLayer(options.name, options.reuse, "instance_normalization", 2, options.center,
                         options.scale),
      options_(std::move(options)) {}

Tensor InstanceNormalization::call(const Tensor& inputs, const std::string& scope) {
  return instance_norm_in_scope(inputs, options_, scope);
}

}  // namespace ad::layers
