// The schedule op: one scalar kernel computing each schedule from the step in float64 (TF builds
// the same formulas from cast, div, floor, pow and cos nodes).
#include "optim/schedules.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"

namespace ad::optim {

namespace {

enum class ScheduleKind { kExponentialDecay, kPiecewiseConstant, kCosineDecay };

struct ScheduleAttrs {
  ScheduleKind kind = ScheduleKind::kExponentialDecay;
  double decay_steps = 1.0;
  double decay_rate = 1.0;
  double alpha = 0.0;
  bool staircase = false;
  std::vector<double> boundaries;
  std::vector<double> values;
};

double scalar_as_double(const KernelContext& ctx, int i, std::string_view what) {
  const Array& a = ctx.input(i);
  if (a.size() != 1) ctx.fail(str(what, " must be a scalar, but it has shape ", a.shape()));
  return a.flat(0);
}

// Inputs: the step, then (exponential and cosine decay) the learning rate.
void schedule_kernel(KernelContext& ctx) {
  const auto& a = ctx.attrs<ScheduleAttrs>();
  const double step = scalar_as_double(ctx, 0, "the step");
  double value = 0.0;
  switch (a.kind) {
    case ScheduleKind::kExponentialDecay: {
      double p = step / a.decay_steps;
      if (a.staircase) p = std::floor(p);
      value = scalar_as_double(ctx, 1, "learning_rate") * std::pow(a.decay_rate, p);
      break;
    }
    case ScheduleKind::kCosineDecay: {
      const double fraction = std::min(step, a.decay_steps) / a.decay_steps;
      const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * fraction));
      value = scalar_as_double(ctx, 1, "learning_rate") * ((1.0 - a.alpha) * cosine + a.alpha);
      break;
    }
    case ScheduleKind::kPiecewiseConstant: {
      // NaN lies in no interval; lower_bound would silently pick values[0].
      if (std::isnan(step)) ctx.fail("x is nan, so it lies in no interval between the boundaries");
      const auto above = std::lower_bound(a.boundaries.begin(), a.boundaries.end(), step);
      value = a.values[static_cast<std::size_t>(above - a.boundaries.begin())];
      break;
    }
  }
  Array& out = ctx.allocate_output(0, Shape{});
  dispatch_floating(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    out.mutable_data<T>()[0] = static_cast<T>(value);
  });
}

const OpDef kScheduleOp{.name = "LearningRateSchedule", .kernel = schedule_kernel};

void check_step(const Tensor& step, std::string_view what) {
  if (!step || step.is_op()) throw ValueError(str(what, ": global_step is required"));
  if (step.dtype() == DType::Bool || !step.shape().is_compatible_with(Shape{})) {
    throw ValueError(str(what, ": global_step '", step.name(), "' must be a numeric scalar, not ",
                         step.dtype(), step.shape()));
  }
}

Tensor record_schedule(std::string_view what, std::string_view op_name,
                       const Hyperparameter* learning_rate, const Tensor& step, ScheduleAttrs attrs,
                       DType dtype, std::string_view name) {
  check_step(step, what);
  Graph& graph = step.graph();
  std::vector<Tensor> inputs{step};
  if (learning_rate) {
    inputs.push_back(learning_rate->is_tensor()
                         ? learning_rate->tensor()
                         : scalar(graph, learning_rate->number(), DType::Float64));
    dtype = inputs.back().dtype();
  }
  return graph.record1(kScheduleOp, inputs, {dtype, Shape{}}, std::move(attrs),
                       name.empty() ? op_name : name);
}

void check_decay_steps(std::string_view what, double decay_steps) {
  if (!(decay_steps > 0.0) || !std::isfinite(decay_steps)) {
    throw ValueError(str(what, ": decay_steps must be positive, got ", decay_steps));
  }
}

}  // namespace

Tensor exponential_decay(const Hyperparameter& learning_rate, const Tensor& global_step,
                         double decay_steps, double decay_rate, bool staircase,
                         std::string_view name) {
  check_decay_steps("exponential_decay", decay_steps);
  ScheduleAttrs attrs;
  attrs.kind = ScheduleKind::kExponentialDecay;
  attrs.decay_steps = decay_steps;
  attrs.decay_rate = decay_rate;
  attrs.staircase = staircase;
  return record_schedule("exponential_decay", "ExponentialDecay", &learning_rate, global_step,
                         std::move(attrs), DType::Float64, name);
}

Tensor piecewise_constant(const Tensor& x, const std::vector<double>& boundaries,
                          const std::vector<double>& values, DType dtype, std::string_view name) {
  if (values.size() != boundaries.size() + 1) {
    throw ValueError(
        str("piecewise_constant: values must have one more entry than boundaries, "
            "but there are ",
            values.size(), " values and ", boundaries.size(), " boundaries"));
  }
  // NaN compares false both ways, so is_sorted cannot see it: look for it first.
  if (const auto nan = std::find_if(boundaries.begin(), boundaries.end(),
                                    [](double b) { return std::isnan(b); });
      nan != boundaries.end()) {
    throw ValueError(str("piecewise_constant: boundaries[", nan - boundaries.begin(),
                         "] is nan; boundaries must be strictly increasing numbers"));
  }
  if (const auto nan =
          std::find_if(values.begin(), values.end(), [](double v) { return std::isnan(v); });
      nan != values.end()) {
    throw ValueError(str("piecewise_constant: values[", nan - values.begin(), "] is nan"));
  }
  if (std::adjacent_find(boundaries.begin(), boundaries.end(), std::greater_equal<>()) !=
      boundaries.end()) {
    throw ValueError("piecewise_constant: boundaries must be strictly increasing");
  }
  if (!is_floating(dtype)) {
    throw ValueError(str("piecewise_constant: dtype must be floating, not ", dtype));
  }
  ScheduleAttrs attrs;
  attrs.kind = ScheduleKind::kPiecewiseConstant;
  attrs.boundaries = boundaries;
  attrs.values = values;
  return record_schedule("piecewise_constant", "PiecewiseConstant", nullptr, x, std::move(attrs),
                         dtype, name);
}

Tensor cosine_decay(const Hyperparameter& learning_rate, const Tensor& global_step,
                    double decay_steps, double alpha, std::string_view name) {
  check_decay_steps("cosine_decay", decay_steps);
  ScheduleAttrs attrs;
  attrs.kind = ScheduleKind::kCosineDecay;
  attrs.decay_steps = decay_steps;
  attrs.alpha = alpha;
  return record_schedule("cosine_decay", "CosineDecay", &learning_rate, global_step,
                         std::move(attrs), DType::Float64, name);
}

}  // namespace ad::optim
