// ExponentialMovingAverage: shadow variables and their update ops, following TF r2.4's
// moving_averages.py (apply, assign_moving_average and _zero_debias).
#include "optim/moving_averages.h"

#include <set>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"

namespace ad::optim {

namespace {

// `base`, or the first of "<base>_1", "<base>_2", ... that names no variable or node (TF's
// uniquified slot scope).
std::string free_name(const Graph& graph, const std::string& base) {
  std::string full = base;
  for (int k = 1; graph.find_variable(full) >= 0 || graph.find_node(full) >= 0; ++k) {
    full = str(base, "_", k);
  }
  return full;
}

// The op name of a tensor: "scope/op" for "scope/op:0".
std::string op_name(const Tensor& t) { return t.op().name; }

}  // namespace

ExponentialMovingAverage::ExponentialMovingAverage(Hyperparameter decay,
                                                   ExponentialMovingAverageOptions options)
    : decay_(std::move(decay)), options_(std::move(options)) {
  if (options_.name.empty()) throw ValueError("ExponentialMovingAverage: the name is empty");
  if (options_.num_updates && options_.num_updates.shape().rank() != 0) {
    throw ValueError(str("ExponentialMovingAverage: num_updates '", options_.num_updates.name(),
                         "' must be a scalar, not ", options_.num_updates.shape()));
  }
}

Variable ExponentialMovingAverage::make_shadow(Graph& graph, const std::string& base,
                                               const Shape& shape, DType dtype,
                                               Initializer initializer) {
  VariableOptions options;
  options.shape = shape;
  options.dtype = dtype;
  options.trainable = false;
  options.initializer = std::move(initializer);  // none: zeros
  return Variable::create(graph, free_name(graph, base), options);
}

// 1 - decay as a float32 scalar, decay = min(decay, (1 + n) / (10 + n)) with num_updates n.
Tensor ExponentialMovingAverage::one_minus_decay(Graph& graph) const {
  Tensor decay = decay_.to_tensor(graph, DType::Float32);
  if (options_.num_updates) {
    if (&options_.num_updates.graph() != &graph) {
      throw ValueError(str("ExponentialMovingAverage: num_updates '", options_.num_updates.name(),
                           "' belongs to another graph than the variables"));
    }
    const Tensor n = cast(options_.num_updates, DType::Float32);
    decay = minimum(decay, (1.0 + n) / (10.0 + n));
  }
  return 1.0 - decay;
}

// TF's assign_moving_average: shadow -= (shadow - value) * (1 - decay); with zero debias the
// biased average is kept in `biased` and the shadow is biased / (1 - decay^t).
Tensor ExponentialMovingAverage::update(const Shadow& shadow, const Tensor& value,
                                        const Tensor& one_minus_decay_f32) {
  const DType dtype = shadow.average.dtype();
  const NameScope scope(value.graph(), "AssignMovingAvg");
  const Tensor rate =
      dtype == DType::Float32 ? one_minus_decay_f32 : cast(one_minus_decay_f32, dtype);
  if (!shadow.biased) {
    return shadow.average.assign_sub((shadow.average.value() - value) * rate);
  }
  const Tensor biased = shadow.biased.assign_sub((shadow.biased.value() - value) * rate);
  const Tensor step = shadow.local_step.assign_add(scalar(value.graph(), 1.0, dtype));
  const Tensor bias_factor = 1.0 - pow(1.0 - rate, step);
  return shadow.average.assign(biased / bias_factor);
}

Tensor ExponentialMovingAverage::apply(const std::vector<Variable>& vars) {
  if (vars.empty()) throw ValueError("ExponentialMovingAverage.apply: the variable list is empty");
  Graph& graph = vars.front().graph();
  for (const auto& var : vars) {
    if (!var) throw ValueError("ExponentialMovingAverage.apply: an empty Variable in the list");
    if (&var.graph() != &graph) {
      throw ValueError(str("ExponentialMovingAverage.apply: '", var.name(),
                           "' belongs to another graph than '", vars.front().name(), "'"));
    }
    if (!is_floating(var.dtype())) {
      throw ValueError(str("ExponentialMovingAverage.apply: '", var.name(), "' is ", var.dtype(),
                           "; the variables must be float32 or float64"));
    }
    if (averages_.contains({&graph, var.handle().node_index()})) {
      throw ValueError(str("Moving average already computed for: ", var.name()));
    }
  }
  graph_ = &graph;
  for (const auto& var : vars) {
    Shadow shadow;
    // Initialized by a read of the variable recorded after its initializer (Variable::create
    // records it outside any control dependency and cond branch): the shadow starts at the
    // variable's initial value (TF's var.initialized_value()).
    const auto read = [var](Graph&, const Shape&, DType) { return var.value(); };
    shadow.average = make_shadow(graph, average_name(var), var.shape(), var.dtype(), read);
    averages_.emplace(Key{&graph, var.handle().node_index()}, shadow);
    graph.add_to_collection(GraphKeys::MOVING_AVERAGE_VARIABLES, var.handle());
  }
  const NameScope scope(graph, options_.name);
  const Tensor rate = one_minus_decay(graph);
  std::vector<Tensor> updates;
  for (const auto& var : vars) {
    updates.push_back(update(averages_.at({&graph, var.handle().node_index()}), var.value(), rate));
  }
  return group(updates, options_.name);
}

Tensor ExponentialMovingAverage::apply(Graph& graph) { return apply(trainable_variables(graph)); }

Tensor ExponentialMovingAverage::apply(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) throw ValueError("ExponentialMovingAverage.apply: the tensor list is empty");
  Graph& graph = tensors.front().graph();
  for (const auto& t : tensors) {
    if (!t || &t.graph() != &graph || t.is_op()) {
      throw ValueError(
          "ExponentialMovingAverage.apply: every tensor must be an output of the "
          "same graph");
    }
    if (!is_floating(t.dtype()) || !t.shape().is_fully_defined()) {
      throw ValueError(str("ExponentialMovingAverage.apply: '", t.name(), "' is ", t.dtype(),
                           t.shape(), "; a float32 or float64 tensor of known shape is needed"));
    }
    if (averages_.contains({&graph, t.node_index()})) {
      throw ValueError(str("Moving average already computed for: ", t.name()));
    }
  }
  graph_ = &graph;
  for (const auto& t : tensors) {
    Shadow shadow;
    shadow.average = make_shadow(graph, op_name(t) + "/" + options_.name, t.shape(), t.dtype(), {});
    if (options_.zero_debias) {
      const std::string base = shadow.average.name();  // a copy: creating variables moves names
      shadow.biased = make_shadow(graph, base + "/biased", t.shape(), t.dtype(), {});
      shadow.local_step = make_shadow(graph, base + "/local_step", Shape{}, t.dtype(), {});
    }
    averages_.emplace(Key{&graph, t.node_index()}, shadow);
  }
  const NameScope scope(graph, options_.name);
  const Tensor rate = one_minus_decay(graph);
  std::vector<Tensor> updates;
  for (const auto& t : tensors) {
    updates.push_back(update(averages_.at({&graph, t.node_index()}), t, rate));
  }
  return group(updates, options_.name);
}

Variable ExponentialMovingAverage::average(const Variable& var) const {
  if (!var) return {};
  const auto it = averages_.find({&var.graph(), var.handle().node_index()});
  return it == averages_.end() ? Variable() : it->second.average;
}

Variable ExponentialMovingAverage::average(const Tensor& tensor) const {
  if (!tensor) return {};
  const auto it = averages_.find({&tensor.graph(), tensor.node_index()});
  return it == averages_.end() ? Variable() : it->second.average;
}

std::string ExponentialMovingAverage::average_name(const Variable& var) const {
  return var.name() + "/" + options_.name;
}

std::map<std::string, Variable> ExponentialMovingAverage::variables_to_restore(
    Graph& graph, const std::vector<Variable>& moving_avg_variables) const {
  std::vector<Variable> averaged = moving_avg_variables;
  if (averaged.empty()) {
    averaged = trainable_variables(graph);
    const auto more = variables_in_collection(graph, GraphKeys::MOVING_AVERAGE_VARIABLES);
    averaged.insert(averaged.end(), more.begin(), more.end());
  }
  std::map<std::string, Variable> name_map;
  std::set<std::string> averaged_names;
  for (const auto& v : averaged) {
    name_map[average_name(v)] = v;
    averaged_names.insert(v.name());
  }
  // Variables without an average are restored under their own names.
  for (const auto& v : global_variables(graph)) {
    if (!averaged_names.contains(v.name()) && !name_map.contains(v.name())) name_map[v.name()] = v;
  }
  return name_map;
}

std::map<std::string, Variable> ExponentialMovingAverage::variables_to_restore() const {
  if (graph_ == nullptr) {
    throw ValueError(
        "ExponentialMovingAverage.variables_to_restore: apply() has not run; pass the graph");
  }
  return variables_to_restore(*graph_);
}

}  // namespace ad::optim
