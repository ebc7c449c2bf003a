// BatchNormalization's construction and first call: the argument checks TF makes (spec §2), the
// resolved configuration (spec §3-4) and the variables (spec §3). The calls themselves are in
// batch_normalization.cpp.
#include <algorithm>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/initializers.h"
#include "autodiff/ops/elementwise.h"
#include "layers/batch_normalization.h"
#include "layers/internal/batch_norm_names.h"

namespace ad::layers {
namespace {

using detail::axes_string;
const auto& label = detail::bn_label;

constexpr double kFusedMinEpsilon =
    1.001e-5;  // TF raises a smaller epsilon to this on its fused path

Initializer or_constant(const Initializer& init, double value) {
  return init ? init : initializers::constant(value);
}

// sqrt(init): moving_stddev and renorm_stddev start at the square root of moving_variance's start.
Initializer sqrt_of(Initializer init) {
  return [init](Graph& graph, const Shape& shape, DType dtype) {
    return sqrt(init(graph, shape, dtype));
  };
}

}  // namespace

// ---- construction and build --------------------------------------------------------------------

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : options_(std::move(options)) {
  if (!options_.renorm) return;
  for (const auto& [key, value] : options_.renorm_clipping) {
    if (key != "rmax" && key != "rmin" && key != "dmax") {
      const std::string name =
          options_.name.empty() ? std::string("batch_normalization") : label(options_.name);
      throw ValueError(str(name, ": renorm_clipping contains key '", key,
                           "' not in [\"rmax\", \"rmin\", \"dmax\"]"));
    }
  }
}

// The scalar arguments given as tensors: of the input's graph and of a floating dtype (TF rejects
// int64 and bool momentum or clipping tensors), checked at build time.
void BatchNormalization::check_scalar_args(const Tensor& inputs) const {
  const std::string name = label(scope_name());
  auto check = [&](const std::string& arg, const ScalarArg& value) {
    const Tensor* t = value.if_tensor();
    if (!t) return;
    if (!*t) throw ValueError(str(name, ": ", arg, " is an empty Tensor"));
    if (&t->graph() != &inputs.graph()) {
      throw ValueError(str(name, ": ", arg, " '", t->name(),
                           "' belongs to another graph than input '", inputs.name(), "'"));
    }
    if (t->is_op() || !is_floating(t->dtype())) {
      throw ValueError(str(name, ": ", arg, " '", t->name(), "' is ", t->dtype(),
                           "; expected a floating-point scalar"));
    }
  };
  check("momentum", options_.momentum);
  if (!options_.renorm) return;
  for (const auto& [key, value] : options_.renorm_clipping) {
    check(key, value);
  }
}

const BatchNormalizationConfig& BatchNormalization::config() const {
  if (!built())
    throw ValueError("batch_normalization: the layer is not built yet; call it on an input first");
  return config_;
}

// The first call: checks the input and the options against it (TF's ValueErrors, spec §2),
// settles the configuration (spec §3-4) and creates the variables.
void BatchNormalization::build(const Tensor& inputs) {
  const std::string name = label(scope_name());
  const Shape& shape = inputs.shape();
  if (shape.rank() == 0)
    throw ValueError(str(name, ": Input has undefined rank: '", inputs.name(), "' is a scalar"));
  if (!is_floating(inputs.dtype())) {
    throw ValueError(str(name, ": input '", inputs.name(), "' is ", inputs.dtype(),
                         "; expected float32 or float64"));
  }
  std::vector<int> axes = resolve_axes(inputs);
  check_scalar_args(inputs);
  std::sort(axes.begin(), axes.end());
  check_virtual_batch(inputs, axes);
  for (int a : axes) {
    if (shape[a] < 0) {
      throw ValueError(str(name, ": Input has undefined `axis` dimension: axis ", a, " of '",
                           inputs.name(), "' has shape ", shape));
    }
  }
  configure(inputs, axes);
  create_variables(inputs.graph(), inputs.dtype());
}

// options.axis resolved against the input's rank (negative axes count from the end), each once.
std::vector<int> BatchNormalization::resolve_axes(const Tensor& inputs) const {
  const std::string name = label(scope_name());
  const Shape& shape = inputs.shape();
  const int rank = shape.rank();
  std::vector<int> axes;
  for (int a : options_.axis.axes()) {
    const int resolved = a < 0 ? a + rank : a;
    if (resolved < 0 || resolved >= rank) {
      throw ValueError(str(name, ": Invalid axis: ", resolved, " (axis ", a, " for input '",
                           inputs.name(), "' of rank ", rank, ", shape ", shape, ")"));
    }
    if (std::find(axes.begin(), axes.end(), resolved) != axes.end()) {
      throw ValueError(str(name, ": Duplicate axis: ", axes_string(options_.axis.axes()),
                           " resolves ", a, " to ", resolved, " twice (input shape ", shape, ")"));
    }
    axes.push_back(resolved);
  }
  if (axes.empty()) throw ValueError(str(name, ": axis is an empty list"));
  return axes;
}

// virtual_batch_size's conditions (spec §2): positive, dividing a known batch, not with axis 0,
// adjustment or synchronized.
void BatchNormalization::check_virtual_batch(const Tensor& inputs,
                                             const std::vector<int>& axes) const {
  const std::string name = label(scope_name());
  const Shape& shape = inputs.shape();
  const auto& vbs = options_.virtual_batch_size;
  if (vbs && options_.synchronized) {
    throw ValueError(str(name, ": synchronized cannot be combined with virtual_batch_size (", *vbs,
                         "): a virtual batch would straddle processes"));
  }
  if (vbs) {
    if (*vbs <= 0) {
      throw ValueError(
          str(name,
              ": virtual_batch_size must be a positive integer that divides the true batch size "
              "of the input, got ",
              *vbs));
    }
    if (axes.front() == 0) {
      throw ValueError(
          str(name,
              ": when using virtual_batch_size, the batch dimension must be 0 and thus axis "
              "cannot include 0 (axis is ",
              axes_string(options_.axis.axes()), ")"));
    }
    if (options_.adjustment) {
      throw ValueError(
          str(name, ": when using virtual_batch_size, adjustment cannot be specified"));
    }
    if (shape[0] >= 0 && shape[0] % *vbs != 0) {
      throw ValueError(str(name, ": the batch of ", shape[0], " (input shape ", shape,
                           ") is not divisible by virtual_batch_size ", *vbs));
    }
  }
}

// The configuration the calls use: which kernel conventions apply, epsilon, the parameters' shape
// and broadcast shape (spec §3) and the reduction axes (with virtual batches, over the ghost
// batch axis 0 and the non-feature axes, skipping the group axis 1).
void BatchNormalization::configure(const Tensor& inputs, const std::vector<int>& axes) {
  const Shape& shape = inputs.shape();
  const int rank = shape.rank();
  const auto& vbs = options_.virtual_batch_size;
  BatchNormalizationConfig& c = config_;
  c.axes = axes;
  c.rank = rank;
  c.dtype = inputs.dtype();
  const bool may_fuse = options_.fused.value_or(true);
  // Keras never takes its fused kernel when synchronized: the moving variance stays biased.
  c.tf_fused = may_fuse && !options_.synchronized && rank == 4 && axes.size() == 1 &&
               (axes[0] == 1 || axes[0] == 3) && !options_.renorm && !vbs && !options_.adjustment &&
               inputs.dtype() == DType::Float32;
  c.fused_gradient = may_fuse && !options_.renorm && !vbs && !options_.adjustment;
  c.epsilon = c.tf_fused ? std::max(options_.epsilon, kFusedMinEpsilon) : options_.epsilon;
  // Parameter shape (spec §3) and the shape the parameters broadcast with.
  Shape full;
  for (int d = 0; d < rank; ++d)
    full.push_back(std::find(axes.begin(), axes.end(), d) != axes.end() ? shape[d] : 1);
  if (vbs) {
    full.insert(1, 1);
    c.param_shape = full;
    c.broadcast_shape = full;
  } else if (axes.size() == 1) {
    c.param_shape = Shape{shape[axes[0]]};
    c.broadcast_shape = axes[0] == rank - 1 ? c.param_shape : full;
  } else {
    c.param_shape = full;
    c.broadcast_shape = full;
  }
  c.reduction_axes.clear();
  const int work_rank = vbs ? rank + 1 : rank;
  for (int d = 0; d < work_rank; ++d) {
    const int original =
        vbs ? (d == 0 ? -1 : d - 1) : d;  // with virtual batches, axis 1 is the group axis
    if (vbs && d == 1) continue;
    if (vbs && d == 0) {
      c.reduction_axes.push_back(0);
      continue;
    }
    if (std::find(axes.begin(), axes.end(), original) == axes.end()) c.reduction_axes.push_back(d);
  }
  input_shape_ = shape;
}

// gamma, beta, the moving statistics and, with renorm, its three variables, in TF's order, and
// the regularization losses made with them.
void BatchNormalization::create_variables(Graph& graph, DType dtype) {
  const BatchNormalizationConfig& c = config_;
  const auto losses_before = graph.get_collection(GraphKeys::REGULARIZATION_LOSSES).size();
  const Initializer mv_init = or_constant(options_.moving_variance_initializer, 1.0);
  const Initializer mm_init = or_constant(options_.moving_mean_initializer, 0.0);
  if (options_.scale) {
    gamma_ = get_variable(graph, "gamma",
                          {.shape = c.param_shape,
                           .dtype = dtype,
                           .initializer = or_constant(options_.gamma_initializer, 1.0),
                           .regularizer = options_.gamma_regularizer,
                           .constraint = options_.gamma_constraint,
                           .trainable = options_.trainable});
  }
  if (options_.center) {
    beta_ = get_variable(graph, "beta",
                         {.shape = c.param_shape,
                          .dtype = dtype,
                          .initializer = or_constant(options_.beta_initializer, 0.0),
                          .regularizer = options_.beta_regularizer,
                          .constraint = options_.beta_constraint,
                          .trainable = options_.trainable});
  }
  moving_mean_ = get_variable(
      graph, "moving_mean",
      {.shape = c.param_shape, .dtype = dtype, .initializer = mm_init, .trainable = false});
  moving_variance_ = get_variable(
      graph, "moving_variance",
      {.shape = c.param_shape, .dtype = dtype, .initializer = mv_init, .trainable = false});
  if (options_.renorm) {
    moving_stddev_ = get_variable(graph, "moving_stddev",
                                  {.shape = c.param_shape,
                                   .dtype = dtype,
                                   .initializer = sqrt_of(mv_init),
                                   .trainable = false});
    renorm_mean_ = get_variable(
        graph, "renorm_mean",
        {.shape = c.param_shape, .dtype = dtype, .initializer = mm_init, .trainable = false});
    renorm_stddev_ = get_variable(graph, "renorm_stddev",
                                  {.shape = c.param_shape,
                                   .dtype = dtype,
                                   .initializer = sqrt_of(mv_init),
                                   .trainable = false});
  }
  const auto losses = graph.get_collection(GraphKeys::REGULARIZATION_LOSSES);
  mutable_losses().assign(losses.begin() + static_cast<std::ptrdiff_t>(losses_before),
                          losses.end());
}

void BatchNormalization::check_input(const Tensor& inputs) const {
  const Shape& shape = inputs.shape();
  if (shape.rank() != config_.rank) {
    throw ValueError(str(label(scope_name()), ": input '", inputs.name(), "' has rank ",
                         shape.rank(), " (shape ", shape, "), but the layer was built for rank ",
                         config_.rank, " (shape ", input_shape_, ")"));
  }
  for (int a : config_.axes) {
    if (shape[a] != input_shape_[a]) {
      throw ValueError(str(label(scope_name()), ": input has ", shape[a], " channels on axis ", a,
                           " (shape ", shape, "), but the layer was built for ", input_shape_[a],
                           " (shape ", input_shape_, ")"));
    }
  }
  if (inputs.dtype() != config_.dtype) {
    throw ValueError(str(label(scope_name()), ": input '", inputs.name(), "' is ", inputs.dtype(),
                         " but the layer was built for ", config_.dtype));
  }
}

std::vector<Variable> BatchNormalization::variable_slots() const {
  return {gamma_,         beta_,        moving_mean_,  moving_variance_,
          moving_stddev_, renorm_mean_, renorm_stddev_};
}

std::vector<Tensor> BatchNormalization::updates() const {
  if (!options_.trainable) return {};
  return updates_;
}

}  // namespace ad::layers
