// The Optimizer base (TF1 optimizer.py flow), hyper-parameters, the global step and its in-place
// Int64 increment, and the shared recording code of the fused update ops.
#include "optim/optimizer.h"

#include <algorithm>
#include <cassert>
#include <set>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "optim/internal/apply_op.h"

namespace ad::optim {

namespace {

struct IncrementAttrs {
  int id = -1;
};

// global_step += 1 in place; Variable::assign_add is for floating variables only.
void increment_kernel(KernelContext& ctx) {
  ctx.variables().update(ctx.graph(), ctx.attrs<IncrementAttrs>().id,
                         [](Array& step) { step.mutable_data<std::int64_t>()[0] += 1; });
}

const OpDef kIncrementOp{
    .name = "AssignAddVariable", .kernel = increment_kernel, .accepts_missing_inputs = true};

Tensor record_increment(const Variable& global_step, std::string_view name) {
  const Tensor inputs[] = {global_step.handle()};
  return global_step.graph()
      .record(kIncrementOp, inputs, {}, IncrementAttrs{global_step.id()}, name)
      .front();
}

void check_global_step(const Variable& step, std::string_view what) {
  if (step.dtype() != DType::Int64 || step.shape().rank() != 0) {
    throw ValueError(str(what, ": global step '", step.name(), "' must be an int64 scalar, not ",
                         step.dtype(), step.shape()));
  }
}

std::string variable_names(const std::vector<Variable>& vars) {
  std::string out = "[";
  for (std::size_t i = 0; i < vars.size(); ++i) out += (i ? ", '" : "'") + vars[i].name() + "'";
  return out + "]";
}

// `base`, or the first of "<base>_1", "<base>_2", ... that names no variable or node.
std::string free_variable_name(const Graph& graph, std::string_view base) {
  std::string full(base);
  for (int k = 1; graph.find_variable(full) >= 0 || graph.find_node(full) >= 0; ++k) {
    full = str(base, "_", k);
  }
  return full;
}

// The full name of a fresh name scope for `base` (as NameScope would pick it), without taking it.
std::string scope_name_for(Graph& graph, std::string_view base) {
  return graph.unique_name(base, /*mark_used=*/false);
}

// Checks one (gradient, variable) pair of apply_gradients against the variables accepted so far,
// before anything is recorded, so a failed call leaves no slots behind.
void check_grad_and_var(const std::string& who, const Tensor& grad, const Variable& var,
                        const std::vector<Variable>& accepted) {
  if (&grad.graph() != &var.graph() ||
      (!accepted.empty() && &var.graph() != &accepted[0].graph())) {
    throw ValueError(str(who, ".apply_gradients: variable '", var.name(),
                         "' and its gradient must belong to the same graph as the others"));
  }
  if (!is_floating(var.dtype())) {
    throw ValueError(str(who, ".apply_gradients: variable '", var.name(), "' is ", var.dtype(),
                         "; only float32 and float64 variables can be optimized"));
  }
  if (grad.is_op() || grad.dtype() != var.dtype() ||
      !grad.shape().is_compatible_with(var.shape())) {
    throw ValueError(
        str(who, ".apply_gradients: gradient '", grad.name(), "' is ",
            grad.is_op() ? std::string("an op without outputs") : str(grad.dtype(), grad.shape()),
            " but variable '", var.name(), "' is ", var.dtype(), var.shape()));
  }
}

// `update` followed by the assignment of var's constraint applied to the updated value (TF1's
// order: the constraint sees the freshly updated value and runs right after this update).
Tensor constrained(const std::string& who, const Tensor& update, const Variable& var) {
  const ControlDependencies after(var.graph(), std::span<const Tensor>(&update, 1));
  const Tensor projected = var.constraint()(var.value());
  if (!projected || projected.dtype() != var.dtype() ||
      !projected.shape().is_compatible_with(var.shape())) {
    throw ValueError(
        str(who, ".apply_gradients: the constraint of '", var.name(), "' returned ",
            projected ? str(projected.dtype(), projected.shape()) : std::string("an empty tensor"),
            " for a ", var.dtype(), var.shape(), " variable"));
  }
  return var.assign(projected);
}

}  // namespace

// ---- Hyperparameter -------------------------------------------------------------------------

Hyperparameter::Hyperparameter(Tensor value) : NumberOrTensor(value) {
  if (!value) throw ValueError("Hyperparameter: the tensor is empty");
  if (value.is_op() || !is_floating(value.dtype()) || !value.shape().is_compatible_with(Shape{})) {
    throw ValueError(str("Hyperparameter: '", value.name(), "' must be a floating scalar, not ",
                         value.dtype(), value.shape()));
  }
}

// ---- fused update ops ---------------------------------------------------------------------------

namespace detail {

Tensor record_apply(const OpDef& op, std::span<const Variable> vars,
                    std::span<const Tensor> scalars, const Tensor& grad, bool flag) {
  const Variable& var = vars.front();
  assert(grad && !grad.is_op() && grad.dtype() == var.dtype());
  assert(std::ranges::all_of(scalars, [&](const Tensor& s) { return s.dtype() == var.dtype(); }));
  ApplyAttrs attrs;
  attrs.flag = flag;
  std::vector<Tensor> inputs;
  for (std::size_t k = 0; k < vars.size(); ++k) {
    attrs.ids[k] = vars[k].id();
    inputs.push_back(vars[k].handle());
  }
  inputs.insert(inputs.end(), scalars.begin(), scalars.end());
  inputs.push_back(grad);
  return var.graph().record(op, inputs, {}, attrs).front();
}

const Array& checked_grad(const KernelContext& ctx) {
  const Array& grad = ctx.input(ctx.num_inputs() - 1);
  const auto& def = ctx.graph().variable(ctx.attrs<ApplyAttrs>().ids[0]);
  if (!(grad.shape() == def.shape)) {
    ctx.fail(str("gradient has shape ", grad.shape(), " but variable '", def.name, "' has shape ",
                 def.shape));
  }
  return grad;
}

}  // namespace detail

// ---- Optimizer ----------------------------------------------------------------------------------

Optimizer::Optimizer(std::string name) : name_(std::move(name)) {
  if (name_.empty()) throw ValueError("Optimizer: the name must not be empty");
}

GradsAndVars Optimizer::compute_gradients(const Tensor& loss,
                                          const std::vector<Variable>& var_list) {
  if (!loss || loss.is_op())
    throw ValueError(str(name_, ".compute_gradients: loss is not a tensor"));
  if (!is_floating(loss.dtype())) {
    throw ValueError(str(name_, ".compute_gradients: loss '", loss.name(), "' is ", loss.dtype(),
                         "; it must be floating"));
  }
  std::vector<Variable> vars = var_list.empty() ? trainable_variables(loss.graph()) : var_list;
  if (vars.empty()) {
    throw ValueError(str(name_,
                         ".compute_gradients: no variables to optimize (the graph has no "
                         "trainable variables and var_list is empty)"));
  }
  std::vector<GradTarget> targets;
  std::set<std::pair<const Graph*, int>> seen;
  for (const auto& v : vars) {
    if (!v) throw ValueError(str(name_, ".compute_gradients: var_list holds an empty Variable"));
    if (&v.graph() != &loss.graph()) {
      throw ValueError(str(name_, ".compute_gradients: variable '", v.name(),
                           "' belongs to another graph than loss '", loss.name(), "'"));
    }
    if (!is_floating(v.dtype())) {
      throw ValueError(str(name_, ".compute_gradients: variable '", v.name(), "' is ", v.dtype(),
                           "; only float32 and float64 variables can be optimized"));
    }
    if (!seen.emplace(&v.graph(), v.id()).second) {
      throw ValueError(
          str(name_, ".compute_gradients: variable '", v.name(), "' appears twice in var_list"));
    }
    targets.emplace_back(v);
  }
  const auto grads = gradients(loss, targets);
  GradsAndVars out;
  for (std::size_t i = 0; i < vars.size(); ++i) out.emplace_back(grads[i], vars[i]);
  return out;
}

// The pairs of grads_and_vars that have a gradient, checked (no empty or repeated variable, each
// gradient fitting its variable); ValueError naming every variable when none has one.
std::pair<std::vector<Variable>, std::vector<Tensor>> Optimizer::pairs_with_gradients(
    const GradsAndVars& grads_and_vars) const {
  std::vector<Variable> vars;
  std::vector<Tensor> grads;
  std::vector<Variable> all_vars;
  std::set<std::pair<const Graph*, int>> seen;
  for (const auto& [grad, var] : grads_and_vars) {
    if (!var) throw ValueError(str(name_, ".apply_gradients: a pair holds an empty Variable"));
    all_vars.push_back(var);
    if (!seen.emplace(&var.graph(), var.id()).second) {
      throw ValueError(str(name_, ".apply_gradients: variable '", var.name(),
                           "' appears twice in grads_and_vars"));
    }
    if (!grad) continue;  // TF's None: no gradient for this variable
    check_grad_and_var(name_, grad, var, vars);
    vars.push_back(var);
    grads.push_back(grad);
  }
  if (vars.empty()) {
    throw ValueError(str(name_, ".apply_gradients: no gradients provided for any variable: ",
                         variable_names(all_vars)));
  }
  return {vars, grads};
}

// In `scope`: each variable's update (then its constraint), then the optimizer's finish step under
// control dependencies on all of them. Returns the updates and the finish ops.
std::vector<Tensor> Optimizer::record_updates(Graph& graph, const std::string& scope,
                                              const std::vector<Variable>& vars,
                                              const std::vector<Tensor>& grads) {
  const NameScope outer(graph, scope + "/");
  std::vector<Tensor> update_ops;
  prepare();
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Variable& var = vars[i];
    const NameScope update_scope(graph, "update_" + var.name());
    const Tensor update = apply_dense(grads[i], var);
    update_ops.push_back(var.constraint() ? constrained(name_, update, var) : update);
  }
  std::vector<Tensor> finish_ops = update_ops;
  const ControlDependencies after(graph, update_ops);
  const auto extra = finish();
  finish_ops.insert(finish_ops.end(), extra.begin(), extra.end());
  return finish_ops;
}

Tensor Optimizer::apply_gradients(const GradsAndVars& grads_and_vars,
                                  std::optional<Variable> global_step, std::string_view name) {
  const auto [vars, grads] = pairs_with_gradients(grads_and_vars);
  Graph& graph = vars[0].graph();
  if (global_step) {
    check_global_step(*global_step, name_ + ".apply_gradients");
    if (&global_step->graph() != &graph) {
      throw ValueError(str(name_, ".apply_gradients: global step '", global_step->name(),
                           "' belongs to another graph"));
    }
  }
  create_slots(vars);
  hyper_cache_.clear();
  graph_ = &graph;
  // Leaves the optimizer reusable when recording throws half-way.
  struct Reset {
    Optimizer& self;
    explicit Reset(Optimizer& optimizer) : self(optimizer) {}
    Reset(const Reset&) = delete;
    Reset& operator=(const Reset&) = delete;
    Reset(Reset&&) = delete;
    Reset& operator=(Reset&&) = delete;
    ~Reset() {
      self.hyper_cache_.clear();
      self.graph_ = nullptr;
    }
  } reset{*this};
  const std::string scope = scope_name_for(graph, name.empty() ? std::string_view(name_) : name);
  const std::vector<Tensor> finish_ops = record_updates(graph, scope, vars, grads);
  Tensor train_op;
  if (global_step) {
    Tensor finished;
    {
      const NameScope outer(graph, scope + "/");
      finished = group(finish_ops, "update");
    }
    const NameScope root(graph, "/");
    const ControlDependencies after(graph, std::span<const Tensor>(&finished, 1));
    train_op = record_increment(*global_step, scope);
  } else {
    const NameScope root(graph, "/");
    train_op = group(finish_ops, scope);
  }
  graph.add_to_collection(GraphKeys::TRAIN_OP, train_op);
  return train_op;
}

Tensor Optimizer::minimize(const Tensor& loss, std::optional<Variable> global_step,
                           const std::vector<Variable>& var_list, std::string_view name) {
  const GradsAndVars grads_and_vars = compute_gradients(loss, var_list);
  std::vector<Variable> vars;
  bool any = false;
  for (const auto& [grad, var] : grads_and_vars) {
    vars.push_back(var);
    any = any || static_cast<bool>(grad);
  }
  if (!any) {
    throw ValueError(str(name_, ".minimize: no gradients provided for any variable: none of ",
                         variable_names(vars), " reaches loss '", loss.name(),
                         "'; check that the loss is computed from them with differentiable ops"));
  }
  return apply_gradients(grads_and_vars, global_step, name);
}

Variable Optimizer::get_slot(const Variable& var, std::string_view name) const {
  const auto it = slots_.find(name);
  if (it != slots_.end()) {
    const auto found = it->second.find({&var.graph(), var.id()});
    if (found != it->second.end()) return found->second;
  }
  std::string names;
  for (const auto& [slot_name, per_var] : slots_) {
    if (per_var.contains({&var.graph(), var.id()})) {
      names += (names.empty() ? "'" : ", '") + slot_name + "'";
    }
  }
  throw ValueError(str(name_, ".get_slot: no slot '", name, "' for variable '", var.name(), "'",
                       names.empty() ? std::string("; it has no slots (was apply_gradients called "
                                                   "with a gradient for it?)")
                                     : "; its slots are " + names));
}

std::vector<std::string> Optimizer::get_slot_names() const {
  std::vector<std::string> names;
  for (const auto& [slot_name, per_var] : slots_) names.push_back(slot_name);
  return names;
}

std::vector<Variable> Optimizer::variables() const {
  std::vector<Variable> out;
  for (const auto& [slot_name, per_var] : slots_) {
    for (const auto& [key, slot] : per_var) out.push_back(slot);
  }
  for (const auto& [key, var] : non_slots_) out.push_back(var);
  return out;
}

void Optimizer::create_slots(const std::vector<Variable>& /*vars*/) {}

void Optimizer::prepare() {}

std::vector<Tensor> Optimizer::finish() { return {}; }

Variable Optimizer::get_or_make_slot(const Variable& var, std::string_view slot_name,
                                     double initial_value) {
  auto& per_var = slots_[std::string(slot_name)];
  const VarKey key{&var.graph(), var.id()};
  if (const auto it = per_var.find(key); it != per_var.end()) return it->second;
  Graph& graph = var.graph();
  // TF names slots by a uniquified variable scope "<var>/<optimizer>": the first slot takes the
  // plain name, the next ones "_1", "_2", ...
  const std::string full = free_variable_name(graph, var.name() + "/" + name_);
  VariableOptions options;
  options.shape = var.shape();
  options.dtype = var.dtype();
  options.trainable = false;
  options.initializer = [initial_value](Graph& g, const Shape& shape, DType dtype) {
    return constant(g, Array::full(dtype, shape, initial_value));
  };
  Variable slot = Variable::create(graph, full, options);
  per_var.emplace(key, slot);
  return slot;
}

Variable Optimizer::get_or_make_non_slot(Graph& graph, std::string_view base_name,
                                         const Hyperparameter& initial_value, DType dtype) {
  const auto key = std::make_pair(&graph, std::string(base_name));
  if (const auto it = non_slots_.find(key); it != non_slots_.end()) return it->second;
  const std::string full = free_variable_name(graph, base_name);
  VariableOptions options;
  options.shape = Shape{};
  options.dtype = dtype;
  options.trainable = false;
  options.initializer = [initial_value](Graph& g, const Shape&, DType d) {
    return initial_value.to_tensor(g, d);
  };
  Variable var = Variable::create(graph, full, options);
  non_slots_.emplace(key, var);
  return var;
}

Tensor Optimizer::hyper(std::string_view key, const Hyperparameter& value, DType dtype) {
  if (!graph_) throw InternalError(str(name_, ": hyper() is for use inside apply_gradients"));
  const auto cache_key = std::make_pair(std::string(key), dtype);
  if (const auto it = hyper_cache_.find(cache_key); it != hyper_cache_.end()) return it->second;
  Tensor t = value.to_tensor(*graph_, dtype);
  hyper_cache_.emplace(cache_key, t);
  return t;
}

// ---- global step --------------------------------------------------------------------------------

std::optional<Variable> get_global_step(Graph& graph) {
  const auto steps = graph.get_collection(GraphKeys::GLOBAL_STEP);
  if (steps.size() > 1) {
    throw ValueError(str("get_global_step: the GLOBAL_STEP collection holds ", steps.size(),
                         " tensors; it must hold at most one"));
  }
  if (steps.empty()) {
    const int id = graph.find_variable("global_step");
    if (id < 0) return std::nullopt;
    Variable step(Tensor(&graph, graph.variable(id).handle_node, 0));
    check_global_step(step, "get_global_step");
    return step;
  }
  Variable step(steps.front());
  check_global_step(step, "get_global_step");
  return step;
}

Variable get_or_create_global_step(Graph& graph) {
  if (auto step = get_global_step(graph)) return *step;
  VariableOptions options;
  options.shape = Shape{};
  options.dtype = DType::Int64;
  options.trainable = false;
  options.collections = {std::string(GraphKeys::GLOBAL_STEP)};
  return Variable::create(graph, "global_step", options);
}

}  // namespace ad::optim
