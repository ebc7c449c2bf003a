// Variables: the handle node, reads, assignments and initialization.
#include "autodiff/variable.h"

#include <algorithm>
#include <cstring>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"

namespace ad {

namespace {

struct VarAttrs {
  int id;
};

void handle_kernel(KernelContext&) {}  // stands for the variable; produces no value

void read_kernel(KernelContext& ctx) {
  ctx.set_output(0, ctx.variables().read(ctx.graph(), ctx.attrs<VarAttrs>().id));
}
void read_gradient(GradContext& g) { g.set(0, g.grad_output(0)); }

void check_value_shape(const KernelContext& ctx, const VariableDef& def, const Array& value) {
  if (!(value.shape() == def.shape)) {
    ctx.fail(str("cannot assign a value of shape ", value.shape(), " to variable '", def.name,
                 "' of shape ", def.shape));
  }
}

void assign_kernel(KernelContext& ctx) {
  const int id = ctx.attrs<VarAttrs>().id;
  const auto& def = ctx.graph().variable(id);
  const Array& value = ctx.input(1);
  check_value_shape(ctx, def, value);
  auto& vars = ctx.variables();
  if (vars.initialized(id)) {
    // Copy into the variable's own storage: the value's buffer goes back to the pool.
    vars.update(ctx.graph(), id, [&](Array& v) {
      std::memcpy(v.raw_mutable_data(), value.raw_data(), value.nbytes());
    });
  } else {
    vars.write(id, value.clone());
  }
  ctx.set_output(0, vars.read(ctx.graph(), id));
}

template <int kSign>
void assign_update_kernel(KernelContext& ctx) {
  const int id = ctx.attrs<VarAttrs>().id;
  const auto& def = ctx.graph().variable(id);
  const Array& delta = ctx.input(1);
  check_value_shape(ctx, def, delta);
  ctx.variables().update(ctx.graph(), id, [&](Array& v) {
    dispatch_floating(v.dtype(), [&](auto tag) {
      using T = decltype(tag);
      auto w = v.mutable_data<T>();
      const auto d = delta.data<T>();
      for (std::size_t i = 0; i < w.size(); ++i) w[i] += static_cast<T>(kSign) * d[i];
    });
  });
  ctx.set_output(0, ctx.variables().read(ctx.graph(), id));
}

// Variables hold every dtype (an int32 step counter, uint8 data); Assign copies bytes. AssignAdd
// and AssignSub need a floating variable.
const OpDef kVariableOp{.name = "VariableV2",
                        .kernel = handle_kernel,
                        .accepts_missing_inputs = true,
                        .narrow_integers = true};
const OpDef kReadOp{.name = "ReadVariable",
                    .kernel = read_kernel,
                    .gradient = read_gradient,
                    .accepts_missing_inputs = true,
                    .narrow_integers = true};
const OpDef kAssignOp{.name = "Assign",
                      .kernel = assign_kernel,
                      .accepts_missing_inputs = true,
                      .narrow_integers = true};
const OpDef kAssignAddOp{
    .name = "AssignAdd", .kernel = assign_update_kernel<1>, .accepts_missing_inputs = true};
const OpDef kAssignSubOp{
    .name = "AssignSub", .kernel = assign_update_kernel<-1>, .accepts_missing_inputs = true};

Tensor record_assign(const OpDef& op, const Variable& var, const Tensor& value,
                     std::string_view what) {
  if (!value) throw ValueError(str(what, " '", var.name(), "': the value is an empty Tensor"));
  if (value.dtype() != var.dtype()) {
    throw ValueError(str(what, " '", var.name(), "': value is ", value.dtype(),
                         " but the variable is ", var.dtype()));
  }
  if (!value.shape().is_compatible_with(var.shape())) {
    throw ValueError(str(what, " '", var.name(), "': value has shape ", value.shape(),
                         " but the variable has shape ", var.shape()));
  }
  if (op.name != "Assign" && !is_floating(var.dtype())) {
    throw ValueError(
        str(what, " '", var.name(), "': needs a floating variable, not ", var.dtype()));
  }
  const Tensor inputs[] = {var.handle(), value};
  return var.graph().record1(op, inputs, {var.dtype(), var.shape()}, VarAttrs{var.id()}, op.name);
}

}  // namespace

GradTarget::GradTarget(const Variable& variable) : tensor_(variable.handle()) {}

Variable::Variable(const Tensor& handle) : handle_(handle) {
  if (!handle || handle.op().op != &kVariableOp) {
    throw ValueError(str("Variable: '", handle.name(), "' is not a variable handle"));
  }
}

const VariableDef& Variable::def() const {
  if (!handle_) throw ValueError("Variable: the variable is empty (default-constructed)");
  return handle_.graph().variable(id());
}

int Variable::id() const { return std::any_cast<const VarAttrs&>(handle_.op().attrs).id; }

Variable Variable::create(Graph& graph, std::string_view full_name,
                          const VariableOptions& options) {
  if (full_name.empty()) throw ValueError("Variable: a variable needs a name");
  if (!options.shape.is_fully_defined()) {
    throw ValueError(
        str("Variable '", full_name, "': the shape ", options.shape, " must be fully defined"));
  }
  if (graph.find_variable(full_name) >= 0) {
    throw ValueError(str("Variable ", full_name,
                         " already exists, disallowed. Did you mean to set "
                         "reuse=true or reuse=auto in VariableScope?"));
  }
  // Variables and their initializers live outside any cond branch and control dependency.
  const ContextScope root(graph, 0);
  const auto no_deps = ControlDependencies::clear(graph);
  VariableDef def;
  def.name = std::string(full_name);
  def.dtype = options.dtype;
  def.shape = options.shape;
  def.trainable = options.trainable;
  def.regularizer = options.regularizer;
  def.constraint = options.constraint;
  const int id = graph.num_variables();
  Tensor handle;
  {
    const NameScope top(graph, "/");  // the full name is absolute
    handle = graph.record1(kVariableOp, {}, {def.dtype, def.shape}, VarAttrs{id}, def.name);
  }
  def.handle_node = handle.node_index();
  graph.add_variable(def);
  Variable var(handle);
  {
    const NameScope scope(graph, def.name + "/Initializer/");
    const Initializer& init = options.initializer;
    Tensor initial =
        init ? init(graph, def.shape, def.dtype) : constant(graph, Array(def.dtype, def.shape));
    if (!initial || initial.dtype() != def.dtype ||
        !initial.shape().is_compatible_with(def.shape)) {
      throw ValueError(str("Variable '", def.name, "': the initializer gave ",
                           initial ? str(initial.dtype(), initial.shape()) : std::string("nothing"),
                           " for a ", def.dtype, def.shape, " variable"));
    }
    graph.mutable_variable(id).initial_value = initial;
  }
  {
    const NameScope scope(graph, def.name + "/");
    graph.mutable_variable(id).initializer =
        record_assign(kAssignOp, var, var.initial_value(), "Assign");
  }
  const bool local = std::find(options.collections.begin(), options.collections.end(),
                               GraphKeys::LOCAL_VARIABLES) != options.collections.end();
  if (!local) graph.add_to_collection(GraphKeys::GLOBAL_VARIABLES, handle);
  if (def.trainable) graph.add_to_collection(GraphKeys::TRAINABLE_VARIABLES, handle);
  for (const auto& key : options.collections) {
    if (key != GraphKeys::GLOBAL_VARIABLES && key != GraphKeys::TRAINABLE_VARIABLES) {
      graph.add_to_collection(key, handle);
    }
  }
  if (def.regularizer) {
    const NameScope scope(graph, def.name + "/Regularizer/");
    const Tensor loss = def.regularizer(var.value());
    if (loss) graph.add_to_collection(GraphKeys::REGULARIZATION_LOSSES, loss);
  }
  return var;
}

Tensor Variable::value() const {
  const Tensor inputs[] = {handle_};
  const NameScope scope(graph(), name() + "/");
  return graph().record1(kReadOp, inputs, {dtype(), shape()}, VarAttrs{id()}, "read");
}

Tensor Variable::assign(const Tensor& value) const {
  return record_assign(kAssignOp, *this, value, "assign");
}
Tensor Variable::assign_add(const Tensor& delta) const {
  return record_assign(kAssignAddOp, *this, delta, "assign_add");
}
Tensor Variable::assign_sub(const Tensor& delta) const {
  return record_assign(kAssignSubOp, *this, delta, "assign_sub");
}

std::vector<Variable> variables_in_collection(const Graph& graph, std::string_view key,
                                              std::string_view scope) {
  std::vector<Variable> out;
  for (const auto& t : graph.get_collection(key, scope)) out.emplace_back(t);
  return out;
}

std::vector<Variable> global_variables(const Graph& graph) {
  return variables_in_collection(graph, GraphKeys::GLOBAL_VARIABLES);
}

std::vector<Variable> trainable_variables(const Graph& graph) {
  return variables_in_collection(graph, GraphKeys::TRAINABLE_VARIABLES);
}

Tensor variables_initializer(Graph& graph, const std::vector<Variable>& variables) {
  std::vector<Tensor> ops;
  ops.reserve(variables.size());
  for (const auto& v : variables) ops.push_back(v.initializer());
  if (ops.empty()) return no_op(graph, "init");
  return group(ops, "init");
}

Tensor variables_initializer(const std::vector<Variable>& variables) {
  if (variables.empty()) {
    throw ValueError(
        "variables_initializer: the list is empty; use variables_initializer(graph, {}) for a "
        "no-op");
  }
  return variables_initializer(variables.front().graph(), variables);
}

Tensor global_variables_initializer(Graph& graph) {
  return variables_initializer(graph, global_variables(graph));
}

Variable get_variable_by_name(Graph& graph, std::string_view name) {
  const int id = graph.find_variable(name);
  if (id < 0) {
    std::vector<std::string> names;
    for (int v = 0; v < graph.num_variables(); ++v) names.push_back(graph.variable(v).name);
    std::string closest;
    for (const auto& n : closest_names(name, names))
      closest += (closest.empty() ? "'" : ", '") + n + "'";
    throw NotFoundError(str("get_variable_by_name: no variable named '", name, "' (",
                            closest.empty() ? "the graph has no variables" : "closest: " + closest,
                            ")"));
  }
  return Variable(Tensor(&graph, graph.variable(id).handle_node, 0));
}

std::vector<Variable> local_variables(const Graph& graph) {
  return variables_in_collection(graph, GraphKeys::LOCAL_VARIABLES);
}

Tensor local_variables_initializer(Graph& graph) {
  return variables_initializer(graph, local_variables(graph));
}

}  // namespace ad
