// while_loop: recording the condition and body into a loop context, the While kernel running them
// with plans of their own, the gradient loop, and map_fn / foldl / scan. The design is explained in
// docs/design_notes.md ("while_loop").
#include "autodiff/while_loop.h"

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "autodiff/control.h"
#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/internal/executor.h"
#include "autodiff/internal/while_loop_trace.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"

namespace ad {

namespace {

std::size_t at(int i) { return static_cast<std::size_t>(i); }

// Everything the While kernel and the gradient need about one loop; shared by the node's attrs.
struct WhileInfo {
  std::string name;
  int context = 0;
  int begin = 0;  // the loop's nodes are recorded in [begin, end)
  int end = 0;
  std::vector<int> var_nodes;  // the LoopVar node of each loop variable
  std::vector<std::string> var_names;
  std::vector<Shape> invariants;
  std::vector<DType> dtypes;
  TensorRef cond_out;
  std::vector<TensorRef> body_outs;
  std::vector<int> capture_nodes;   // LoopInput nodes, in the order of the While node's inputs
  std::vector<TensorRef> captured;  // what each stands for outside the loop
  std::optional<std::int64_t> maximum_iterations;
  bool back_prop = true;
  std::vector<detail::TraceLayout> layouts;
  std::atomic<bool> trace{false};  // set once a gradient through the loop is built
  std::once_flag planned;
  std::unique_ptr<detail::Plan> cond_plan;
  std::unique_ptr<detail::Plan> body_plan;
};
using WhileAttrs = std::shared_ptr<WhileInfo>;

void never_runs(KernelContext& ctx) { ctx.fail("a loop variable runs only inside its loop"); }
const OpDef kLoopVarOp{.name = "LoopVar", .kernel = never_runs};

// ---- The While kernel ---------------------------------------------------------------------------

void make_plans(const Graph& graph, WhileInfo& info) {
  std::vector<Tensor> feeds;
  auto* g = const_cast<Graph*>(&graph);  // Tensor handles name nodes; nothing is recorded
  for (int n : info.var_nodes) feeds.emplace_back(g, n, 0);
  for (int n : info.capture_nodes) feeds.emplace_back(g, n, 0);
  const Tensor cond_fetch[] = {Tensor(g, info.cond_out.node, info.cond_out.index)};
  std::vector<Tensor> body_fetches;
  for (const auto& r : info.body_outs) body_fetches.emplace_back(g, r.node, r.index);
  info.cond_plan = detail::make_plan(graph, cond_fetch, feeds);
  info.body_plan = detail::make_plan(graph, body_fetches, feeds);
}

// Appends each loop variable's value and shape to the record.
struct TraceRecorder {
  std::vector<std::vector<char>> bytes;
  std::vector<std::int64_t> shapes;

  void append(const std::vector<Array>& vars) {
    bytes.resize(vars.size());
    for (std::size_t j = 0; j < vars.size(); ++j) {
      const auto element = static_cast<std::int64_t>(dtype_size(vars[j].dtype()));
      shapes.push_back(static_cast<std::int64_t>(bytes[j].size()) / element);
      for (auto d : vars[j].shape().dims()) shapes.push_back(d);
      const auto* data = static_cast<const char*>(vars[j].raw_data());
      if (vars[j].nbytes() != 0) bytes[j].insert(bytes[j].end(), data, data + vars[j].nbytes());
    }
  }
};

void check_invariant(const WhileInfo& info, std::size_t j, const Array& value,
                     std::int64_t iteration) {
  if (!info.invariants[j].is_compatible_with(value.shape())) {
    throw InvalidArgumentError(str("while_loop '", info.name, "': loop variable ", j, " ('",
                                   info.var_names[j], "') has shape ", value.shape(),
                                   " after iteration ", iteration, ", outside its shape invariant ",
                                   info.invariants[j]));
  }
}

// Outputs: the final loop variables; with back_prop, each variable's record, the shapes record
// and the iteration count.
void write_outputs(KernelContext& ctx, const WhileInfo& info, std::vector<Array>& vars,
                   TraceRecorder& trace, std::int64_t iterations) {
  const std::size_t k = vars.size();
  for (std::size_t j = 0; j < k; ++j) ctx.set_output(static_cast<int>(j), std::move(vars[j]));
  if (!info.back_prop) return;
  trace.bytes.resize(k);
  for (std::size_t j = 0; j < k; ++j) {
    const auto element = dtype_size(info.dtypes[j]);
    const auto n = static_cast<std::int64_t>(trace.bytes[j].size() / element);
    Array& out = ctx.allocate_output(static_cast<int>(k + j), Shape{n});
    if (n != 0) std::memcpy(out.raw_mutable_data(), trace.bytes[j].data(), trace.bytes[j].size());
  }
  Array& shapes = ctx.allocate_output(static_cast<int>(2 * k),
                                      Shape{static_cast<std::int64_t>(trace.shapes.size())});
  if (!trace.shapes.empty()) {
    std::memcpy(shapes.raw_mutable_data(), trace.shapes.data(), shapes.nbytes());
  }
  ctx.allocate_output(static_cast<int>(2 * k + 1), Shape{}).mutable_data<std::int64_t>()[0] =
      iterations;
}

// Runs the condition's plan, then (while it is true and the iteration limit allows) the body's,
// feeding each the current loop variables and the captured values.
void while_kernel(KernelContext& ctx) {
  auto& info = *ctx.attrs<WhileAttrs>();
  const auto* env = ctx.run_env();
  if (env == nullptr) throw InternalError("While: runs only inside a Session run");
  std::call_once(info.planned, [&] { make_plans(ctx.graph(), info); });
  const std::size_t k = info.var_nodes.size();
  std::vector<Array> vars(k);
  for (std::size_t j = 0; j < k; ++j) vars[j] = ctx.input(static_cast<int>(j));
  std::vector<const Array*> feeds(k + info.capture_nodes.size(), nullptr);
  for (std::size_t j = 0; j < k; ++j) feeds[j] = &vars[j];
  for (std::size_t l = 0; l < info.capture_nodes.size(); ++l) {
    const int i = static_cast<int>(k + l);
    if (ctx.has_input(i)) feeds[k + l] = &ctx.input(i);  // a variable handle holds no value
  }
  const bool tracing = info.back_prop && info.trace.load(std::memory_order_acquire);
  TraceRecorder trace;
  detail::RunState state;
  std::vector<Array> results;
  std::int64_t iterations = 0;
  for (;;) {
    if (info.maximum_iterations && iterations >= *info.maximum_iterations) break;
    detail::execute(*env, *info.cond_plan, state, feeds, results);
    if (!results[0].data<bool>()[0]) break;
    if (tracing) trace.append(vars);
    detail::execute(*env, *info.body_plan, state, feeds, results);
    ++iterations;
    for (std::size_t j = 0; j < k; ++j) {
      check_invariant(info, j, results[j], iterations);
      vars[j] = std::move(results[j]);
    }
  }
  write_outputs(ctx, info, vars, trace, iterations);
}

void while_gradient(GradContext& g);

const OpDef kWhileOp{.name = "While",
                     .kernel = while_kernel,
                     .gradient = while_gradient,
                     .accepts_missing_inputs = true};
const OpDef kWhileNoGradientOp{
    .name = "While", .kernel = while_kernel, .accepts_missing_inputs = true};

// ---- Copying the body (for the gradient loop) ---------------------------------------------------

// Records a copy of the loop's nodes in the current context, with the loop variables replaced by
// `xs` and the captured values by the values outside; returns the copies of the body's outputs.
class BodyCopier {
 public:
  // `captured`: the While node's inputs for its captured values (a copy of the loop, made when an
  // enclosing loop is differentiated, takes copies of them).
  BodyCopier(Graph& graph, const WhileInfo& info, const std::vector<Tensor>& xs,
             const std::vector<Tensor>& captured)
      : graph_(graph), info_(info) {
    contexts_[info.context] = graph.current_context();
    for (std::size_t j = 0; j < xs.size(); ++j) values_[info.var_nodes[j]] = xs[j];
    for (std::size_t l = 0; l < info.capture_nodes.size(); ++l) {
      values_[info.capture_nodes[l]] = captured[l];
    }
  }

  std::vector<Tensor> copy() {
    for (int n = info_.begin; n < info_.end; ++n) {
      if (values_.contains(n) || !copied_here(graph_.node(n).context)) continue;
      copy_node(n);
    }
    std::vector<Tensor> outs;
    for (const auto& r : info_.body_outs) outs.push_back(lookup(r));
    return outs;
  }

 private:
  // Nodes of the loop itself or of its cond branches; a nested loop's nodes stay with it.
  bool copied_here(int context) const {
    for (int c = context; c != 0; c = graph_.context(c).parent) {
      if (c == info_.context) return true;
      if (graph_.context(c).loop) return false;
    }
    return false;
  }

  Tensor lookup(TensorRef ref) {
    const auto it = values_.find(ref.node);
    if (it == values_.end()) {
      throw InternalError(str("while_loop '", info_.name, "': the body reads '",
                              graph_.node(ref.node).name, "', recorded outside it"));
    }
    const Tensor& t = it->second;
    if (ref.index == 0 || t.is_op()) return t;
    return {&t.graph(), t.node_index(), ref.index};
  }

  int context_of(int c) {
    if (const auto it = contexts_.find(c); it != contexts_.end()) return it->second;
    const CondContext ctx = graph_.context(c);
    const int parent = context_of(ctx.parent);
    const Tensor pred = lookup(ctx.pred);
    const auto [if_true, if_false] =
        graph_.add_cond_contexts({pred.node_index(), pred.output_index()}, parent);
    contexts_[c] = ctx.branch ? if_true : if_false;
    contexts_[ctx.sibling] = ctx.branch ? if_false : if_true;
    return contexts_[c];
  }

  void copy_node(int n) {
    const Node& node = graph_.node(n);
    std::vector<Tensor> inputs;
    for (const auto& in : node.inputs) inputs.push_back(lookup(in));
    std::vector<Tensor> deps;
    for (int c : node.control_inputs) {
      if (values_.contains(c)) deps.push_back(lookup({c, 0}));
    }
    const ContextScope scope(graph_, context_of(node.context));
    const ControlDependencies after(graph_, deps);
    Tensor copy;
    if (const auto merge = detail::merge_contexts(node)) {
      copy =
          detail::merge(inputs[0], inputs[1], context_of(merge->first), context_of(merge->second));
    } else {
      copy = graph_
                 .record(*node.op, inputs, node.outputs, node.attrs,
                         node.name.substr(node.name.rfind('/') + 1))
                 .front();
    }
    values_[n] = copy;
  }

  Graph& graph_;
  const WhileInfo& info_;
  std::map<int, Tensor> values_;  // original node -> its copy (output 0, or the op)
  std::map<int, int> contexts_;
};

// ---- The gradient loop --------------------------------------------------------------------------

// The gradient is a while loop over t = n-1, ..., 0 carrying dv (the gradient of each floating
// loop variable) and dc (the gradient of each captured value wanted). Iteration t reads the loop
// variables x_t saved by the forward loop, records a copy of the body on them, and differentiates
// it: dv <- J_body(x_t)^T dv (+ the gradient reaching the record of x_t, for higher orders), and
// dc <- dc + (d body / d captured)^T dv. Being itself a while loop, it can be differentiated again.
struct GradientLoop {
  std::shared_ptr<WhileInfo> info;
  std::vector<Tensor> traces, dtraces, captured;
  Tensor shapes;
  std::vector<int> floating_vars;    // indexes of the loop variables with gradients
  std::vector<int> wanted_captures;  // indexes of the captured values with gradients

  std::vector<Tensor> body(const std::vector<Tensor>& v) const {
    Graph& graph = v[0].graph();
    const Tensor& t = v[0];
    const std::size_t k = info->var_nodes.size();
    std::vector<Tensor> xs;
    for (std::size_t j = 0; j < k; ++j) {
      xs.push_back(detail::trace_read(traces[j], shapes, t, info->layouts[j], info->invariants[j]));
    }
    const auto outs = BodyCopier(graph, *info, xs, captured).copy();
    std::vector<Tensor> ys;
    std::vector<Tensor> grad_ys;
    std::vector<GradTarget> targets;
    for (std::size_t f = 0; f < floating_vars.size(); ++f) {
      ys.push_back(outs[at(floating_vars[f])]);
      grad_ys.push_back(v[1 + f]);
      targets.emplace_back(xs[at(floating_vars[f])]);
    }
    for (int l : wanted_captures) {
      const Tensor& c = captured[at(l)];
      const auto inside =
          graph.capture({c.node_index(), c.output_index()}, graph.current_context());
      targets.emplace_back(Tensor(&graph, inside->node, inside->index));
    }
    const auto grads = gradients(ys, targets, grad_ys);
    std::vector<Tensor> next{t - 1.0};
    for (std::size_t f = 0; f < floating_vars.size(); ++f) {
      const auto j = at(floating_vars[f]);
      Tensor dv = grads[f] ? grads[f] : zeros_like(xs[j]);
      if (dtraces[j]) {
        dv = dv + detail::trace_read(dtraces[j], shapes, t, info->layouts[j], info->invariants[j]);
      }
      next.push_back(dv);
    }
    for (std::size_t w = 0; w < wanted_captures.size(); ++w) {
      const Tensor& dc = v[1 + floating_vars.size() + w];
      const Tensor& grad = grads[floating_vars.size() + w];
      next.push_back(grad ? dc + grad : dc);
    }
    return next;
  }
};

void while_gradient(GradContext& g) {
  const auto info = g.attrs<WhileAttrs>();
  bool any_floating = false;
  for (const auto dtype : info->dtypes) any_floating |= is_floating(dtype);
  if (!any_floating) return;  // no floating output, so no gradient reaches the loop
  info->trace.store(true, std::memory_order_release);
  Graph& graph = g.graph();
  const int k = static_cast<int>(info->var_nodes.size());
  auto loop = std::make_shared<GradientLoop>();
  loop->info = info;
  loop->shapes = g.output(2 * k);
  std::vector<Tensor> init{g.output(2 * k + 1) - 1.0};
  WhileLoopOptions options;
  options.shape_invariants = {Shape{}};
  options.name = info->name + "_grad";
  for (int j = 0; j < k; ++j) {
    loop->traces.push_back(g.output(k + j));
    loop->dtraces.push_back(g.grad_output(k + j));
    if (!is_floating(info->dtypes[at(j)])) continue;
    loop->floating_vars.push_back(j);
    init.push_back(g.grad_output(j) ? g.grad_output(j) : zeros_like(g.output(j)));
    options.shape_invariants.push_back(info->invariants[at(j)]);
  }
  for (std::size_t l = 0; l < info->captured.size(); ++l) {
    const int i = k + static_cast<int>(l);
    loop->captured.push_back(g.input(i));
    if (!g.wants(i)) continue;
    loop->wanted_captures.push_back(static_cast<int>(l));
    const Tensor c = g.input(i);
    init.push_back(c.shape().is_fully_defined() ? fill(graph, c.shape(), 0.0, c.dtype())
                                                : zeros_like(c));
    options.shape_invariants.push_back(c.shape());
  }
  const auto results = while_loop(
      [](const std::vector<Tensor>& v) { return greater_equal(v[0], scalar_like(v[0], 0.0)); },
      [loop](const std::vector<Tensor>& v) { return loop->body(v); }, init, options);
  for (std::size_t f = 0; f < loop->floating_vars.size(); ++f) {
    g.set(loop->floating_vars[f], results[1 + f]);
  }
  for (std::size_t w = 0; w < loop->wanted_captures.size(); ++w) {
    g.set(k + loop->wanted_captures[w], results[1 + loop->floating_vars.size() + w]);
  }
}

}  // namespace

namespace {

// ---- Recording ----------------------------------------------------------------------------------

Shape invariant_for(const WhileLoopOptions& options, const std::string& name,
                    const std::vector<Tensor>& loop_vars, std::size_t j) {
  const Tensor& v = loop_vars[j];
  if (options.shape_invariants.empty()) return v.shape();
  const Shape& s = options.shape_invariants[j];
  if (!s.is_compatible_with(v.shape())) {
    throw ValueError(str("while_loop '", name, "': loop variable ", j, " ('", v.name(),
                         "') enters with shape ", v.shape(), ", outside its shape invariant ", s));
  }
  return s;
}

// A tensor the loop's plans can fetch: recorded inside the loop (a value from outside is captured).
Tensor inside(const Tensor& t, int context) {
  if (t.graph().enclosing_loop(t.op().context) == context) return t;
  const ContextScope scope(t.graph(), context);
  return identity(t);
}

void check_body_outputs(const WhileInfo& info, const std::vector<Tensor>& outs,
                        const std::vector<Tensor>& loop_vars) {
  if (outs.size() != loop_vars.size()) {
    throw ValueError(str("while_loop '", info.name, "': the body returned ", outs.size(),
                         " tensors for ", loop_vars.size(), " loop variables"));
  }
  for (std::size_t j = 0; j < outs.size(); ++j) {
    const Tensor& o = outs[j];
    if (!o || o.is_op()) {
      throw ValueError(str("while_loop '", info.name,
                           "': the body returned an empty tensor or an "
                           "op for loop variable ",
                           j, " ('", loop_vars[j].name(), "')"));
    }
    if (o.dtype() != info.dtypes[j]) {
      throw ValueError(str("while_loop '", info.name, "': loop variable ", j, " ('",
                           loop_vars[j].name(), "') enters as ", info.dtypes[j],
                           " but the body returns ", o.dtype(), " ('", o.name(), "')"));
    }
    if (!info.invariants[j].is_compatible_with(o.shape())) {
      throw ValueError(str("while_loop '", info.name, "': loop variable ", j, " ('",
                           loop_vars[j].name(), "') has shape invariant ", info.invariants[j],
                           " but the body returns shape ", o.shape(),
                           "; pass a wider shape_invariants entry"));
    }
  }
}

void check_loop_vars(const std::vector<Tensor>& loop_vars, const WhileLoopOptions& options) {
  if (loop_vars.empty())
    throw ValueError(str("while_loop '", options.name, "': no loop variables"));
  for (std::size_t j = 0; j < loop_vars.size(); ++j) {
    const Tensor& v = loop_vars[j];
    if (!v || v.is_op()) {
      throw ValueError(str("while_loop '", options.name, "': loop variable ", j,
                           " is an empty tensor or an op without outputs"));
    }
    if (&v.graph() != &loop_vars[0].graph()) {
      throw ValueError(str("while_loop '", options.name, "': loop variable ", j, " ('", v.name(),
                           "') belongs to another graph"));
    }
  }
  if (!options.shape_invariants.empty() && options.shape_invariants.size() != loop_vars.size()) {
    throw ValueError(str("while_loop '", options.name, "': ", options.shape_invariants.size(),
                         " shape invariants for ", loop_vars.size(), " loop variables"));
  }
  if (options.maximum_iterations && *options.maximum_iterations < 0) {
    throw ValueError(str("while_loop '", options.name, "': maximum_iterations is negative (",
                         *options.maximum_iterations, ")"));
  }
}

// Records cond and body inside the loop's context; returns the body's outputs.
std::vector<Tensor> record_loop(Graph& graph, WhileInfo& info, const LoopCondFn& cond,
                                const LoopBodyFn& body) {
  const ContextScope in_loop(graph, info.context);
  const auto no_outer_deps = ControlDependencies::clear(graph);
  std::vector<Tensor> vars;
  for (std::size_t j = 0; j < info.dtypes.size(); ++j) {
    vars.push_back(
        graph.record1(kLoopVarOp, {}, {info.dtypes[j], info.invariants[j]}, {}, "loop_var"));
    info.var_nodes.push_back(vars.back().node_index());
  }
  const Tensor c = cond(vars);
  if (!c || c.is_op() || c.dtype() != DType::Bool || c.shape().rank() != 0) {
    throw ValueError(str("while_loop '", info.name, "': cond must return a bool scalar, not ",
                         c && !c.is_op() ? str(c.dtype(), c.shape()) : std::string("nothing")));
  }
  const Tensor c_inside = inside(c, info.context);
  info.cond_out = {c_inside.node_index(), c_inside.output_index()};
  auto outs = body(vars);
  for (auto& o : outs) {
    if (o && !o.is_op()) o = inside(o, info.context);
  }
  return outs;
}

}  // namespace

std::vector<Tensor> while_loop(const LoopCondFn& cond, const LoopBodyFn& body,
                               const std::vector<Tensor>& loop_vars,
                               const WhileLoopOptions& options) {
  check_loop_vars(loop_vars, options);
  Graph& graph = loop_vars[0].graph();
  const NameScope scope(graph, options.name);
  auto info = std::make_shared<WhileInfo>();
  info->name = scope.name().substr(0, scope.name().size() - 1);
  info->maximum_iterations = options.maximum_iterations;
  info->back_prop = options.back_prop;
  for (std::size_t j = 0; j < loop_vars.size(); ++j) {
    info->var_names.push_back(loop_vars[j].name());
    info->dtypes.push_back(loop_vars[j].dtype());
    info->invariants.push_back(invariant_for(options, info->name, loop_vars, j));
  }
  info->context = graph.add_loop_context(graph.current_context(), info->name);
  info->begin = graph.num_nodes();
  const auto outs = record_loop(graph, *info, cond, body);
  check_body_outputs(*info, outs, loop_vars);
  info->end = graph.num_nodes();
  for (const auto& o : outs) info->body_outs.push_back({o.node_index(), o.output_index()});
  std::vector<Tensor> inputs = loop_vars;
  for (const auto& [node, value] : graph.context(info->context).captures) {
    info->capture_nodes.push_back(node);
    info->captured.push_back(value);
    inputs.emplace_back(&graph, value.node, value.index);
  }
  std::vector<TensorSpec> specs;
  for (std::size_t j = 0; j < loop_vars.size(); ++j)
    specs.push_back({info->dtypes[j], info->invariants[j]});
  if (options.back_prop) {
    int base = 0;
    int stride = 0;
    for (const auto& s : info->invariants) stride += 1 + s.rank();
    for (std::size_t j = 0; j < loop_vars.size(); ++j) {
      specs.push_back({info->dtypes[j], Shape{-1}});
      info->layouts.push_back({info->invariants[j].rank(), base, stride});
      base += 1 + info->invariants[j].rank();
    }
    specs.push_back({DType::Int64, Shape{-1}});
    specs.push_back({DType::Int64, Shape{}});
  }
  auto results = graph.record(options.back_prop ? kWhileOp : kWhileNoGradientOp, inputs,
                              std::move(specs), WhileAttrs(info), "Exit");
  results.resize(loop_vars.size());
  return results;
}

namespace {
WhileLoopOptions loop_options(std::vector<Shape> shape_invariants) {
  WhileLoopOptions options;
  options.shape_invariants = std::move(shape_invariants);
  return options;
}

Tensor int64_scalar(Graph& graph, std::int64_t value) {
  return scalar(graph, static_cast<double>(value), DType::Int64);
}

// The number of slices along axis 0, and slice i.
Tensor leading_dim(const Tensor& elems) {
  if (elems.shape().rank() == 0) {
    throw ValueError(str("map_fn/foldl/scan: elems '", elems.name(), "' is a scalar"));
  }
  if (elems.shape()[0] >= 0) return int64_scalar(elems.graph(), elems.shape()[0]);
  return gather(shape(elems), int64_scalar(elems.graph(), 0));
}

// acc stacked with `value` flattened; the loop's results are reshaped at the end.
Tensor push_flat(const Tensor& stack, const Tensor& value) {
  return concat({stack, reshape(value, Shape{-1})}, 0);
}

Tensor unflatten(const Tensor& flat, const Tensor& n, const Shape& item, const char* what) {
  if (!item.is_fully_defined()) {
    throw ValueError(str(what,
                         ": the per-element result must have a fully defined static shape, "
                         "not ",
                         item));
  }
  std::vector<Tensor> dims{reshape(n, Shape{1})};
  for (auto d : item.dims()) dims.push_back(reshape(int64_scalar(flat.graph(), d), Shape{1}));
  return reshape(flat, concat(dims, 0));
}
}  // namespace

Tensor map_fn(const std::function<Tensor(const Tensor&)>& fn, const Tensor& elems,
              std::optional<DType> dtype, std::string name) {
  if (!elems) throw ValueError("map_fn: elems is an empty Tensor");
  Graph& graph = elems.graph();
  const NameScope scope(graph, name);
  const Tensor n = leading_dim(elems);
  const DType out_dtype = dtype.value_or(elems.dtype());
  auto item = std::make_shared<Shape>();
  const auto results = while_loop(
      [n](const std::vector<Tensor>& v) { return less(v[0], n); },
      [fn, elems, item, out_dtype](const std::vector<Tensor>& v) {
        const Tensor y = fn(gather(elems, v[0]));
        if (!y || y.is_op() || y.dtype() != out_dtype) {
          throw ValueError(str("map_fn: fn returned ", y && !y.is_op() ? str(y.dtype()) : "nothing",
                               " where ", out_dtype, " was expected"));
        }
        *item = y.shape();
        return std::vector<Tensor>{v[0] + 1.0, push_flat(v[1], y)};
      },
      {int64_scalar(graph, 0), fill(graph, Shape{0}, 0.0, out_dtype)},
      loop_options({Shape{}, Shape{-1}}));
  return unflatten(results[1], n, *item, "map_fn");
}

Tensor foldl(const std::function<Tensor(const Tensor&, const Tensor&)>& fn, const Tensor& elems,
             const Tensor& initializer, std::string name) {
  if (!elems || !initializer) throw ValueError("foldl: elems or initializer is an empty Tensor");
  Graph& graph = elems.graph();
  const NameScope scope(graph, name);
  const Tensor n = leading_dim(elems);
  const auto results =
      while_loop([n](const std::vector<Tensor>& v) { return less(v[0], n); },
                 [fn, elems](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{v[0] + 1.0, fn(v[1], gather(elems, v[0]))};
                 },
                 {int64_scalar(graph, 0), initializer}, loop_options({}));
  return results[1];
}

Tensor scan(const std::function<Tensor(const Tensor&, const Tensor&)>& fn, const Tensor& elems,
            const Tensor& initializer, std::string name) {
  if (!elems || !initializer) throw ValueError("scan: elems or initializer is an empty Tensor");
  Graph& graph = elems.graph();
  const NameScope scope(graph, name);
  const Tensor n = leading_dim(elems);
  const auto results = while_loop(
      [n](const std::vector<Tensor>& v) { return less(v[0], n); },
      [fn, elems](const std::vector<Tensor>& v) {
        const Tensor acc = fn(v[1], gather(elems, v[0]));
        return std::vector<Tensor>{v[0] + 1.0, acc, push_flat(v[2], acc)};
      },
      {int64_scalar(graph, 0), initializer, fill(graph, Shape{0}, 0.0, initializer.dtype())},
      loop_options({Shape{}, initializer.shape(), Shape{-1}}));
  return unflatten(results[2], n, initializer.shape(), "scan");
}

}  // namespace ad
