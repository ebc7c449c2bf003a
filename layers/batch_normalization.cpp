// batch_normalization's calls (its construction and build are in batch_normalization_build.cpp):
// the training and inference compositions (§5), TF's fused-kernel statistics convention (§6),
// training as a bool or a tensor (§7), and the hand-written gradient attached through
// custom_gradient.
#include "layers/batch_normalization.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/initializers.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/fused_batch_norm.h"
#include "autodiff/ops/global_moments_hook.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "autodiff/warnings.h"
#include "layers/internal/batch_norm_names.h"
#include "layers/internal/layer_util.h"

namespace ad::layers {

namespace {

using detail::axes_string;
const auto& label = detail::bn_label;

Tensor reshape_to(const Tensor& t, const Shape& shape) {
  return t.shape() == shape ? t : reshape(t, shape);
}

Tensor as_tensor(Graph& graph, const ScalarArg& value, DType dtype) {
  if (const double* number = value.if_number()) return scalar(graph, *number, dtype);
  const Tensor& t = *value.if_tensor();
  if (!t) throw ValueError("batch_normalization: a scalar argument is an empty Tensor");
  if (t.shape().rank() != 0) {
    throw ValueError(
        str("batch_normalization: '", t.name(), "' must be a scalar, not ", t.shape()));
  }
  return cast(t, dtype);
}

// (1 - momentum): formed in double and converted once for a number, as TF does in Python.
Tensor decay(Graph& graph, const ScalarArg& momentum, DType dtype) {
  if (const double* m = momentum.if_number()) return scalar(graph, 1.0 - *m, dtype);
  return 1.0 - as_tensor(graph, momentum, dtype);
}

// ---- virtual batches: [B, ...] <-> [V, B/V, ...] as private zero-copy ops ----------------------

struct GhostAttrs {
  std::int64_t virtual_batch_size;
  std::string layer;
};

void ghost_split_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<GhostAttrs>();
  const Array& x = ctx.input(0);
  const std::int64_t batch = x.shape()[0];
  if (batch % attrs.virtual_batch_size != 0) {
    ctx.fail(str(label(attrs.layer), ": the batch of ", batch, " (input shape ", x.shape(),
                 ") is not divisible by virtual_batch_size ", attrs.virtual_batch_size));
  }
  Shape shape = x.shape();
  shape[0] = batch / attrs.virtual_batch_size;
  shape.insert(0, attrs.virtual_batch_size);
  ctx.set_output(0, x.reshaped(shape));
}

void ghost_merge_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  Shape shape = x.shape();
  const std::int64_t batch = shape[0] * shape[1];
  shape.erase(0);
  shape[0] = batch;
  ctx.set_output(0, x.reshaped(shape));
}

Tensor ghost_split(const Tensor& x, std::int64_t v, const std::string& layer);
Tensor ghost_merge(const Tensor& x, const std::string& layer);

void ghost_split_gradient(GradContext& g) {
  g.set(0, ghost_merge(g.grad_output(0), g.attrs<GhostAttrs>().layer));
}
void ghost_merge_gradient(GradContext& g) {
  g.set(0, ghost_split(g.grad_output(0), g.attrs<GhostAttrs>().virtual_batch_size,
                       g.attrs<GhostAttrs>().layer));
}

const OpDef kGhostSplitOp{
    .name = "VirtualBatchSplit", .kernel = ghost_split_kernel, .gradient = ghost_split_gradient};
const OpDef kGhostMergeOp{
    .name = "VirtualBatchMerge", .kernel = ghost_merge_kernel, .gradient = ghost_merge_gradient};

Tensor ghost_split(const Tensor& x, std::int64_t v, const std::string& layer) {
  Shape shape = x.shape();
  shape[0] = shape[0] < 0 ? -1 : shape[0] / v;
  shape.insert(0, v);
  const Tensor inputs[] = {x};
  return x.graph().record1(kGhostSplitOp, inputs, {x.dtype(), shape}, GhostAttrs{v, layer});
}

Tensor ghost_merge(const Tensor& x, const std::string& layer) {
  Shape shape = x.shape();
  const std::int64_t batch = shape[0] < 0 || shape[1] < 0 ? -1 : shape[0] * shape[1];
  shape.erase(0);
  shape[0] = batch;
  const Tensor inputs[] = {x};
  return x.graph().record1(kGhostMergeOp, inputs, {x.dtype(), shape},
                           GhostAttrs{x.shape()[0], layer});
}

// ---- the empty-batch check: an identity that fails a training run with nothing to average -----

struct BatchCountAttrs {
  std::vector<int> reduction_axes;
  std::string layer;
};

void batch_count_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<BatchCountAttrs>();
  const Array& x = ctx.input(0);
  for (int a : attrs.reduction_axes) {
    if (x.shape()[a] == 0) {
      ctx.fail(str(label(attrs.layer),
                   ": the training batch has no elements to average over (input ", x.shape(),
                   ", reduction axes ", axes_string(attrs.reduction_axes),
                   "); the moving statistics are left unchanged"));
    }
  }
  ctx.set_output(0, x);
}

void batch_count_gradient(GradContext& g) { g.set(0, g.grad_output(0)); }

const OpDef kBatchCountOp{
    .name = "CheckBatchCount", .kernel = batch_count_kernel, .gradient = batch_count_gradient};

// `x` unchanged (no copy); running it fails when a reduction axis is empty at run time.
Tensor checked_batch_count(const Tensor& x, const std::vector<int>& axes,
                           const std::string& layer) {
  const Tensor inputs[] = {x};
  return x.graph().record1(kBatchCountOp, inputs, {x.dtype(), x.shape()},
                           BatchCountAttrs{axes, layer});
}

// ---- synchronized statistics: the registered collectives, and the empty-global-batch check -----

struct GlobalCountAttrs {
  std::vector<int> reduction_axes;
  std::string layer;
};

// Inputs: global mean, global variance, global count, x (for its shape in the message). Outputs:
// the mean and the variance, unchanged (no copy).
void global_count_kernel(KernelContext& ctx) {
  const auto& attrs = ctx.attrs<GlobalCountAttrs>();
  if (ctx.input(2).data<double>()[0] == 0) {
    ctx.fail(str(label(attrs.layer),
                 ": the global training batch has no elements to average over: the input is empty "
                 "on every process (this one's is ",
                 ctx.input(3).shape(), ", reduction axes ", axes_string(attrs.reduction_axes),
                 "); the moving statistics are left unchanged"));
  }
  ctx.set_output(0, ctx.input(0));
  ctx.set_output(1, ctx.input(1));
}

void global_count_gradient(GradContext& g) {
  g.set(0, g.grad_output(0));
  g.set(1, g.grad_output(1));
}

const OpDef kGlobalCountOp{.name = "CheckGlobalBatchCount",
                           .kernel = global_count_kernel,
                           .gradient = global_count_gradient};

// The statistics of a synchronized layer's training batch over every process, through the hooks
// that ad::distributed::init() registers. Their consumers fail at run time when every process's
// batch is empty (the single-process rule, over the global batch); an empty batch on some of
// them is fine.
nn::GlobalMoments checked_global_moments(const Tensor& x, const std::vector<int>& axes,
                                         const std::string& layer) {
  const nn::GlobalMomentsHook& hook = nn::global_moments_hook();
  if (!hook || !nn::global_sum_hook()) {
    throw ValueError(str(label(layer),
                         ": synchronized=true needs the global statistics that "
                         "ad::distributed::init() registers; call it first (a single process "
                         "without MPI is a job of one rank)"));
  }
  const nn::GlobalMoments stats = hook(x, axes);
  const Tensor inputs[] = {stats.mean, stats.variance, stats.count, x};
  const auto checked = x.graph().record(
      kGlobalCountOp, inputs,
      {{stats.mean.dtype(), stats.mean.shape()}, {stats.variance.dtype(), stats.variance.shape()}},
      GlobalCountAttrs{axes, layer});
  return {checked[0], checked[1], stats.count};
}

// (a_scale, a_offset) composed after (b_scale, b_offset): x*b_s + b_o then *a_s + a_o. Absent
// tensors are the identity (scale 1, offset 0).
std::pair<Tensor, Tensor> compose(const Tensor& inner_scale, const Tensor& inner_offset,
                                  const Tensor& outer_scale, const Tensor& outer_offset) {
  Tensor scale = inner_scale && outer_scale ? inner_scale * outer_scale
                                            : (inner_scale ? inner_scale : outer_scale);
  Tensor offset = inner_offset && outer_scale ? inner_offset * outer_scale : inner_offset;
  if (outer_offset) offset = offset ? offset + outer_offset : outer_offset;
  return {scale, offset};
}

}  // namespace

// ---- operator(): the first call builds the layer in its scope, later ones re-enter the scope
// -----

Tensor BatchNormalization::operator()(const Tensor& inputs, std::optional<Predicate> training) {
  if (!inputs) throw ValueError("batch_normalization: the input is an empty Tensor");
  const Predicate pred = training.value_or(options_.training);
  // The functional form with a name (or under reuse) takes the name as is; otherwise the default
  // name is uniquified.
  const auto open = [&](std::optional<VariableScope>& scope, Graph& graph) {
    if (functional_ && !options_.name.empty()) {
      scope.emplace(graph, options_.name, options_.reuse);
    } else if (functional_ && options_.reuse != Reuse::kFalse) {
      scope.emplace(graph, "batch_normalization", options_.reuse);
    } else {
      const std::string base = options_.name.empty() ? "batch_normalization" : options_.name;
      scope.emplace(graph, VariableScope::DefaultName{base}, options_.reuse);
    }
  };
  return call_in_scope(inputs, open, [&] { return call(inputs, pred); });
}

// ---- the call: inference, training, moving averages, update ops ------------------------------

// New values of the moving statistics from a training call, or (in the inference branch of a
// cond on a training tensor) their current values.
struct BatchNormalization::MovingStatistics {
  Tensor mean;
  Tensor variance;
  Tensor stddev;  // renorm only, like the two below
  Tensor renorm_mean;
  Tensor renorm_stddev;

  // The present entries in this order (a cond's outputs).
  [[nodiscard]] std::vector<Tensor> list() const {
    std::vector<Tensor> out{mean, variance};
    if (stddev) out.insert(out.end(), {stddev, renorm_mean, renorm_stddev});
    return out;
  }
  static MovingStatistics from_list(const std::vector<Tensor>& values, std::size_t first) {
    MovingStatistics m;
    m.mean = values[first];
    m.variance = values[first + 1];
    if (values.size() > first + 2) {
      m.stddev = values[first + 2];
      m.renorm_mean = values[first + 3];
      m.renorm_stddev = values[first + 4];
    }
    return m;
  }
};

// A training call's output with the batch statistics in the layout the kernels used (`mean`,
// keepdims) and in the parameter shape (what the moving averages receive).
struct BatchNormalization::TrainingOutput {
  Tensor y;
  Tensor mean;
  Tensor stat_mean;
  Tensor stat_variance;
};

Tensor BatchNormalization::param(const Variable& v) const {
  return v ? reshape_to(v.value(), config_.broadcast_shape) : Tensor();
}

// Inference: normalize with the moving statistics.
Tensor BatchNormalization::inference(const Tensor& x) const {
  const BatchNormalizationConfig& c = config_;
  const Tensor gamma = param(gamma_);
  const Tensor beta = param(beta_);
  const Tensor mean = param(moving_mean_);
  const Tensor variance = param(moving_variance_);
  if (c.fused_gradient) {
    return nn::fused_batch_norm(
               {.x = x, .scale = gamma, .offset = beta, .mean = mean, .variance = variance},
               c.epsilon, c.reduction_axes, false)
        .y;
  }
  return nn::batch_normalization(x, mean, variance, beta, gamma, c.epsilon);
}

// Renorm (spec §5.5): r = stddev / renorm_stddev and d = (mean - renorm_mean) / renorm_stddev,
// clipped and without gradient, composed before (scale, offset).
std::pair<Tensor, Tensor> BatchNormalization::renorm_correction(const Tensor& stat_mean,
                                                                const Tensor& stat_variance,
                                                                const Tensor& scale,
                                                                const Tensor& offset) const {
  Graph& graph = stat_mean.graph();
  const DType dtype = config_.dtype;
  const double eps = config_.epsilon;
  const Tensor stddev = sqrt(stat_variance + eps);
  const Tensor rho = maximum(renorm_stddev_.value(), scalar(graph, std::sqrt(eps), dtype));
  Tensor r = stddev / rho;
  Tensor d = (stat_mean - renorm_mean_.value()) / rho;
  const auto& clip = options_.renorm_clipping;
  if (auto it = clip.find("rmin"); it != clip.end())
    r = maximum(r, as_tensor(graph, it->second, dtype));
  if (auto it = clip.find("rmax"); it != clip.end())
    r = minimum(r, as_tensor(graph, it->second, dtype));
  if (auto it = clip.find("dmax"); it != clip.end()) {
    const Tensor dmax = as_tensor(graph, it->second, dtype);
    d = minimum(maximum(d, -dmax), dmax);
  }
  r = reshape_to(stop_gradient(r), config_.broadcast_shape);
  d = reshape_to(stop_gradient(d), config_.broadcast_shape);
  return compose(r, d, scale, offset);
}

// One tensor of the adjustment's result: of the input's graph and broadcasting against the input.
void BatchNormalization::check_adjustment(const Tensor& inputs, const Tensor& t,
                                          const char* what) const {
  const std::string name = label(scope_name());
  if (!t || t.is_op())
    throw ValueError(str(name, ": adjustment returned an empty Tensor for the ", what));
  if (&t.graph() != &inputs.graph()) {
    throw ValueError(str(name, ": adjustment's ", what, " '", t.name(),
                         "' belongs to another graph than input '", inputs.name(), "'"));
  }
  try {
    (void)broadcast_static_shape("adjustment", t.shape(), inputs.shape());
  } catch (const ValueError&) {
    throw ValueError(str(name, ": adjustment's ", what, " has shape ", t.shape(),
                         ", which does not broadcast against input '", inputs.name(), "' of shape ",
                         inputs.shape(), " (parameter shape ", config_.param_shape, ")"));
  }
}

// Training through the composed primitives (fused=false, renorm, virtual batches, adjustment).
BatchNormalization::TrainingOutput BatchNormalization::train_composed(const Tensor& inputs,
                                                                      const Tensor& x,
                                                                      const Tensor& gamma,
                                                                      const Tensor& beta) const {
  const BatchNormalizationConfig& c = config_;
  auto to_param = [&](const Tensor& t) { return reshape_to(t, c.param_shape); };
  TrainingOutput out;
  Tensor mean;
  Tensor variance;
  if (options_.synchronized) {
    const nn::GlobalMoments stats = checked_global_moments(x, c.reduction_axes, scope_name());
    mean = stats.mean;
    variance = stats.variance;
  } else {
    std::tie(mean, variance) = nn::exact_moments(x, c.reduction_axes);
  }
  out.mean = mean;
  if (options_.virtual_batch_size) {  // average the per-group statistics over the groups (§5.6)
    out.stat_mean = to_param(reduce_mean(mean, {1}, true));
    out.stat_variance = to_param(reduce_mean(variance, {1}, true));
  } else {
    out.stat_mean = to_param(mean);
    out.stat_variance = to_param(variance);
  }
  Tensor scale = gamma;
  Tensor offset = beta;
  if (options_.adjustment) {
    const auto [adj_scale, adj_bias] = options_.adjustment(shape(inputs));
    check_adjustment(inputs, adj_scale, "scale");
    check_adjustment(inputs, adj_bias, "bias");
    std::tie(scale, offset) = compose(adj_scale, adj_bias, scale, offset);
  }
  if (options_.renorm) {
    std::tie(scale, offset) = renorm_correction(out.stat_mean, out.stat_variance, scale, offset);
  }
  out.y = nn::batch_normalization(x, mean, variance, offset, scale, c.epsilon);
  return out;
}

BatchNormalization::TrainingOutput BatchNormalization::train(const Tensor& inputs,
                                                             const Tensor& batch) const {
  const BatchNormalizationConfig& c = config_;
  std::vector<int> counted = c.reduction_axes;  // with virtual batches, also the group's batch
  if (options_.virtual_batch_size) counted.push_back(1);
  // Synchronized statistics average over the global batch, which other ranks may fill.
  const Tensor x =
      options_.synchronized ? batch : checked_batch_count(batch, counted, scope_name());
  const Tensor gamma = param(gamma_);
  const Tensor beta = param(beta_);
  if (!c.fused_gradient) return train_composed(inputs, x, gamma, beta);
  if (options_.synchronized) {
    const nn::GlobalMoments stats = checked_global_moments(x, c.reduction_axes, scope_name());
    const Tensor y =
        nn::synchronized_batch_norm({.x = x,
                                     .scale = gamma,
                                     .offset = beta,
                                     .mean = stats.mean,
                                     .variance = stats.variance,
                                     .count = stats.count},
                                    c.epsilon, c.reduction_axes, nn::global_sum_hook());
    return {y, stats.mean, reshape_to(stats.mean, c.param_shape),
            reshape_to(stats.variance, c.param_shape)};
  }
  const auto outs = nn::fused_batch_norm({.x = x, .scale = gamma, .offset = beta}, c.epsilon,
                                         c.reduction_axes, true);
  return {outs.y, outs.mean, reshape_to(outs.mean, c.param_shape),
          reshape_to(outs.variance, c.param_shape)};
}

// TF's update rule, `momentum` weighting the old statistic: v - (v - batch value) * (1 - momentum).
BatchNormalization::MovingStatistics BatchNormalization::moving_averages(
    const TrainingOutput& batch, const Tensor& x) const {
  Graph& graph = x.graph();
  const DType dtype = config_.dtype;
  const double eps = config_.epsilon;
  Tensor stat_variance = batch.stat_variance;
  if (config_.tf_fused) {  // TF's fused kernel hands the unbiased variance to the moving average
    const Tensor n = cast(size(x), dtype) / cast(size(batch.mean), dtype);
    stat_variance = stat_variance * (n / maximum(n - 1.0, scalar(graph, 1.0, dtype)));
  }
  const Tensor decay_main = decay(graph, options_.momentum, dtype);
  auto moved = [&](const Variable& v, const Tensor& value, const Tensor& rate) {
    const Tensor current = v.value();
    return current - (current - value) * rate;
  };
  MovingStatistics m;
  m.mean = moved(moving_mean_, batch.stat_mean, decay_main);
  if (!options_.renorm) {
    m.variance = moved(moving_variance_, stat_variance, decay_main);
    return m;
  }
  const Tensor stddev = sqrt(stat_variance + eps);
  m.stddev = moved(moving_stddev_, stddev, decay_main);
  m.variance = maximum(square(m.stddev) - eps, scalar(graph, 0.0, dtype));
  const Tensor decay_renorm = scalar(graph, 1.0 - options_.renorm_momentum, dtype);
  m.renorm_mean = moved(renorm_mean_, batch.stat_mean, decay_renorm);
  m.renorm_stddev = moved(renorm_stddev_, stddev, decay_renorm);
  return m;
}

// The current values, for the inference branch of a cond.
BatchNormalization::MovingStatistics BatchNormalization::current_moving_statistics() const {
  MovingStatistics m;
  m.mean = moving_mean_.value();
  m.variance = moving_variance_.value();
  if (options_.renorm) {
    m.stddev = moving_stddev_.value();
    m.renorm_mean = renorm_mean_.value();
    m.renorm_stddev = renorm_stddev_.value();
  }
  return m;
}

// Assigns the new moving statistics (renorm's own first, as TF orders them) and adds the assign
// ops to UPDATE_OPS unless the layer is not trainable.
void BatchNormalization::add_updates(Graph& graph, const MovingStatistics& m) {
  std::vector<Tensor> call_updates;
  // Named after TF's AssignMovingAvg ops so graphs read alike.
  auto assign = [&](const Variable& v, const Tensor& value) {
    const NameScope scope(graph, "AssignMovingAvg");
    return v.assign(value);
  };
  if (options_.renorm) {
    const Tensor renorm_updates[] = {assign(renorm_mean_, m.renorm_mean),
                                     assign(renorm_stddev_, m.renorm_stddev)};
    const ControlDependencies after_renorm(renorm_updates);
    call_updates.push_back(assign(moving_mean_, m.mean));
    const Tensor stddev_update = assign(moving_stddev_, m.stddev);
    const ControlDependencies after_stddev({stddev_update});
    call_updates.push_back(assign(moving_variance_, m.variance));
  } else {
    call_updates.push_back(assign(moving_mean_, m.mean));
    call_updates.push_back(assign(moving_variance_, m.variance));
  }
  updates_.insert(updates_.end(), call_updates.begin(), call_updates.end());
  if (!options_.trainable) {
    warn(str(
        label(scope_name()), ": trainable=false, so its ", call_updates.size(),
        " update ops are not added to UPDATE_OPS and moving_mean/moving_variance will not change "
        "in a standard training loop (TF1 behaviour); run layer.updates() yourself if you want "
        "them"));
    return;
  }
  const auto existing = graph.get_collection(GraphKeys::UPDATE_OPS);
  for (const auto& u : call_updates) {
    if (std::find(existing.begin(), existing.end(), u) == existing.end()) {
      graph.add_to_collection(GraphKeys::UPDATE_OPS, u);
    }
  }
}

Tensor BatchNormalization::call(const Tensor& inputs, const Predicate& training) {
  const std::optional<bool> static_training = static_value(training);
  const auto& vbs = options_.virtual_batch_size;
  const Tensor x = vbs ? ghost_split(inputs, *vbs, scope_name()) : inputs;
  Tensor y;
  std::optional<MovingStatistics> moving;
  if (static_training == false) {
    y = inference(x);
  } else if (static_training == true) {
    const TrainingOutput out = train(inputs, x);
    y = out.y;
    moving = moving_averages(out, x);
  } else {
    const auto outs = cond(
        std::get<Tensor>(training),
        [&] {
          const TrainingOutput out = train(inputs, x);
          std::vector<Tensor> values{out.y};
          const auto moved = moving_averages(out, x).list();
          values.insert(values.end(), moved.begin(), moved.end());
          return values;
        },
        [&] {
          std::vector<Tensor> values{inference(x)};
          const auto current = current_moving_statistics().list();
          values.insert(values.end(), current.begin(), current.end());
          return values;
        });
    y = outs[0];
    moving = MovingStatistics::from_list(outs, 1);
  }
  if (vbs) y = ghost_merge(y, scope_name());
  if (moving) add_updates(inputs.graph(), *moving);
  return y;
}

Tensor batch_normalization(const Tensor& inputs, const BatchNormalizationOptions& options) {
  BatchNormalization layer(options);
  layer.functional_ = true;
  return layer(inputs, options.training);
}

UpdateOpsReport check_update_ops(const Session& session, const Graph& graph) {
  if (&session.graph() != &graph) {
    throw ValueError(
        "check_update_ops: the session runs another graph than the one whose UPDATE_OPS to check");
  }
  UpdateOpsReport report;
  for (const auto& op : graph.get_collection(GraphKeys::TRAIN_OP))
    report.train_op_ran |= session.run_count(op) > 0;
  for (const auto& op : graph.get_collection(GraphKeys::UPDATE_OPS)) {
    if (session.run_count(op) == 0) report.never_run.push_back(op);
  }
  if (report.train_op_ran && !report.never_run.empty()) {
    std::string names;
    for (std::size_t i = 0; i < report.never_run.size() && i < 4; ++i) {
      names += (i ? ", " : "") + report.never_run[i].op().name;
    }
    report.message =
        str(report.never_run.size(), " UPDATE_OPS never ran although a train op did (", names,
            report.never_run.size() > 4 ? ", ..." : "",
            "): moving statistics stay at their initial values; run "
            "ad::group({train_op, ad::group(graph.get_collection(ad::GraphKeys::UPDATE_OPS))})");
  }
  return report;
}

}  // namespace ad::layers
