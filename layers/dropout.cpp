// dropout: the mask is drawn by random_uniform over the (possibly broadcast) noise shape, with
// TF's op order: (x * (1 / (1 - rate))) * cast(uniform >= rate). smart_cond records only the
// taken branch when `training` is a bool. A rate Tensor goes through the same formula in the
// input's dtype, after a check of its value at run time.
#include "layers/dropout.h"

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/random.h"
#include "autodiff/variable_scope.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

std::string label(const std::string& name) {
  return name.empty() ? std::string("dropout") : str("dropout '", name, "'");
}

// The mask's shape: static when every entry is known, else assembled from shape(inputs).
Tensor noise_dims(const Tensor& inputs, const Shape& noise, const std::string& who) {
  const Shape& shape = inputs.shape();
  if (noise.rank() != shape.rank()) {
    throw ValueError(str(who, ": noise_shape ", noise, " must have the input's rank ", shape.rank(),
                         " (input shape ", shape, ")"));
  }
  std::vector<std::int64_t> fixed(static_cast<std::size_t>(noise.rank()), 0);
  std::vector<std::int64_t> from_input(static_cast<std::size_t>(noise.rank()), 0);
  bool dynamic = false;
  for (int d = 0; d < noise.rank(); ++d) {
    const std::int64_t n = noise[d];
    if (n >= 0 && n != 1 && shape[d] >= 0 && n != shape[d]) {
      throw ValueError(str(who, ": noise_shape ", noise, " does not broadcast to the input shape ",
                           shape, " (dim ", d, ": ", n, " is neither 1 nor ", shape[d], ")"));
    }
    const std::int64_t resolved = n >= 0 ? n : shape[d];
    if (resolved < 0) {
      dynamic = true;
      from_input[static_cast<std::size_t>(d)] = 1;
    } else {
      fixed[static_cast<std::size_t>(d)] = resolved;
    }
  }
  Graph& graph = inputs.graph();
  const Tensor known = constant(graph, Array::vector(fixed));
  if (!dynamic) return known;
  // dims = shape(inputs) * from_input + fixed, entry by entry.
  return ad::shape(inputs) * constant(graph, Array::vector(from_input)) + known;
}

// Forwards a rate Tensor's value after checking it lies in [0, 1): a rate of 1 would scale the
// kept units by infinity, a negative one keep them all and scale them down.
void check_rate_kernel(KernelContext& ctx) {
  const double rate = ctx.input(0).flat(0);
  if (!(rate >= 0.0 && rate < 1.0))
    ctx.fail(str("rate must be in [0, 1) (the fraction of units dropped), got ", rate));
  ctx.set_output(0, ctx.input(0));
}

const OpDef kCheckRateOp{.name = "CheckDropoutRate", .kernel = check_rate_kernel};

Tensor checked_rate(const Tensor& rate) {
  const Tensor inputs[] = {rate};
  return rate.graph().record1(kCheckRateOp, inputs, {rate.dtype(), rate.shape()});
}

// (x * (1 / (1 - rate))) * cast(uniform >= rate), the rate a number or a scalar Tensor.
Tensor drop(const Tensor& inputs, const DropoutRate& rate, const Tensor& dims,
            std::optional<std::int64_t> seed) {
  Graph& graph = inputs.graph();
  const DType dtype = inputs.dtype();
  const RandomOptions options{.dtype = dtype, .seed = seed};
  if (const double* r = rate.if_number()) {
    const Tensor scaled = inputs * scalar(graph, 1.0 / (1.0 - *r), dtype);
    const Tensor uniform = random_uniform(dims, 0.0, 1.0, options);
    return scaled * cast(greater_equal(uniform, scalar(graph, *r, dtype)), dtype);
  }
  const Tensor r = cast(checked_rate(rate.tensor()), dtype);
  const Tensor one = scalar(graph, 1.0, dtype);
  const Tensor scaled = inputs * (one / (one - r));
  const Tensor uniform = random_uniform(dims, 0.0, 1.0, options);
  return scaled * cast(greater_equal(uniform, r), dtype);
}

}  // namespace

Dropout::Dropout(DropoutOptions options) : options_(std::move(options)) {
  if (const double* rate = options_.rate.if_number()) {
    if (!(*rate >= 0.0 && *rate < 1.0)) {
      throw ValueError(str(label(options_.name),
                           ": rate must be in [0, 1) (the fraction of units "
                           "dropped), got ",
                           *rate));
    }
    return;
  }
  const Tensor& rate = options_.rate.tensor();
  if (!rate || !is_floating(rate.dtype()) || rate.shape().rank() != 0) {
    throw ValueError(str(label(options_.name),
                         ": a rate Tensor must be a float32 or float64 scalar",
                         rate ? str(", got '", rate.name(), "' ", rate.dtype(), rate.shape())
                              : std::string(", got an empty Tensor")));
  }
}

Tensor Dropout::operator()(const Tensor& inputs, std::optional<Predicate> training) {
  return call(inputs, training.value_or(options_.training), false);
}

Tensor Dropout::call(const Tensor& inputs, const Predicate& training, bool functional) {
  if (!inputs) throw ValueError(str(label(options_.name), ": the input is an empty Tensor"));
  std::optional<VariableScope> scope;
  detail::open_layer_scope(scope, inputs.graph(), functional, options_.name, Reuse::kFalse,
                           "dropout");
  const std::string who = label(scope->name());
  detail::require_floating(inputs, who);
  // Without noise_shape the mask has the input's shape, known statically as far as the input's is.
  const Tensor dims = options_.noise_shape ? noise_dims(inputs, *options_.noise_shape, who)
                      : inputs.shape().is_fully_defined()
                          ? constant(inputs.graph(), Array::vector(inputs.shape().to_vector()))
                          : ad::shape(inputs);
  const DropoutRate& rate = options_.rate;
  const std::optional<std::int64_t> seed = options_.seed;
  if (const Tensor* flag = std::get_if<Tensor>(&training)) {
    if (!*flag || flag->dtype() != DType::Bool || flag->shape().rank() != 0) {
      throw ValueError(str(who, ": training must be a bool or a boolean scalar Tensor"));
    }
  }
  return smart_cond(
      training,
      [&]() -> Tensor {
        if (const double* r = rate.if_number(); r != nullptr && *r == 0.0) return identity(inputs);
        return drop(inputs, rate, dims, seed);
      },
      [&] { return identity(inputs); });
}

Tensor dropout(const Tensor& inputs, const DropoutOptions& options) {
  Dropout layer(options);
  return layer.call(inputs, options.training, true);
}

}  // namespace ad::layers
