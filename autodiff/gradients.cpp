// Reverse mode over the tape: one backward sweep in recording order, no recursion.
#include "autodiff/gradients.h"

#include <algorithm>

#include "autodiff/control.h"
#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"

namespace ad {

Tensor GradContext::input(int i) const {
  const auto& ref = node().inputs[static_cast<std::size_t>(i)];
  return {&graph_, ref.node, ref.index};
}

void GradContext::set(int i, const Tensor& grad) {
  if (!grad || !wants(i)) return;
  const Tensor in = input(i);
  if (grad.dtype() != in.dtype() || !grad.shape().is_compatible_with(in.shape())) {
    throw InternalError(str("gradient of ", node().op->name, " '", node().name,
                            "': the gradient for input ", i, " is ", grad.dtype(), grad.shape(),
                            " but the input is ", in.dtype(), in.shape()));
  }
  Tensor& slot = grad_inputs_[static_cast<std::size_t>(i)];
  if (slot) {
    const Tensor both[] = {slot, grad};
    slot = add_n(both);
  } else {
    slot = grad;
  }
}

namespace {

// Contributions to each output of each node between the xs and the ys.
class GradientTable {
 public:
  GradientTable(Graph& graph, int lo, int hi)
      : graph_(graph), lo_(lo), table_(static_cast<std::size_t>(hi - lo + 1)) {}

  // Adds a contribution for `ref`; when it was recorded inside a cond branch that `ref` is not in,
  // it leaves the branch through a Merge with zeros from the sibling branch.
  void add(TensorRef ref, Tensor grad) {
    const int target = graph_.node(ref.node).context;
    const int start = graph_.node(grad.node_index()).context;
    for (int c = graph_.context_visible(start, target) ? target : start; c != target;
         c = graph_.context(c).parent) {
      if (c == 0) {
        throw InternalError(str("gradients: a gradient for '", graph_.node(ref.node).name,
                                "' was recorded outside its cond branch"));
      }
      const auto& ctx = graph_.context(c);
      const int sibling = ctx.sibling;
      const ContextScope parent(graph_, ctx.parent);
      Tensor zeros;
      {
        const ContextScope other(graph_, sibling);
        // A static shape avoids reading `ref`, which may never hold a value (a variable handle).
        const Tensor like(&graph_, ref.node, ref.index);
        zeros = like.shape().is_fully_defined() ? fill(graph_, like.shape(), 0.0, like.dtype())
                                                : zeros_like(like);
      }
      grad = ctx.branch ? detail::merge(grad, zeros, c, sibling)
                        : detail::merge(zeros, grad, sibling, c);
    }
    auto& outputs = table_[static_cast<std::size_t>(ref.node - lo_)];
    if (outputs.size() <= static_cast<std::size_t>(ref.index))
      outputs.resize(static_cast<std::size_t>(ref.index) + 1);
    outputs[static_cast<std::size_t>(ref.index)].push_back(grad);
  }

  // The summed gradient of output `index` of `node`, recorded in the node's context.
  Tensor total(int node, int index) {
    auto& outputs = table_[static_cast<std::size_t>(node - lo_)];
    if (outputs.size() <= static_cast<std::size_t>(index)) return {};
    auto& parts = outputs[static_cast<std::size_t>(index)];
    if (parts.empty()) return {};
    if (parts.size() > 1) {
      const ContextScope scope(graph_, graph_.node(node).context);
      const Tensor sum = add_n(parts);
      parts.assign(1, sum);
    }
    return parts.front();
  }

 private:
  Graph& graph_;
  int lo_;
  std::vector<std::vector<std::vector<Tensor>>> table_;
};

void check_same_graph(const Tensor& t, Graph*& graph, const char* what) {
  if (!t) throw ValueError(str("gradients: an entry of ", what, " is an empty Tensor"));
  (void)t.shape();  // a handle to a node or output its graph lacks is a ValueError
  if (t.is_op())
    throw ValueError(str("gradients: '", t.name(), "' in ", what, " is an op without outputs"));
  if (graph == nullptr) graph = &t.graph();
  if (&t.graph() != graph)
    throw ValueError(str("gradients: '", t.name(), "' in ", what, " belongs to another graph"));
}

// The nodes between the xs and the ys (indices lo..hi): reached from some x, and reaching some y.
struct Reach {
  int lo = 0;
  std::vector<char> from_x;
  std::vector<char> to_y;
  [[nodiscard]] bool from_an_x(int node) const {
    return node >= lo && from_x[static_cast<std::size_t>(node - lo)] != 0;
  }
  [[nodiscard]] bool between(int node) const {
    const auto local = static_cast<std::size_t>(node - lo);
    return from_x[local] != 0 && to_y[local] != 0;
  }
};

// One forward sweep marks what the xs reach, one backward sweep what reaches the ys; the tape is
// in execution order, so both are single passes.
Reach reach(const Graph& graph, int lo, int hi, const std::vector<GradTarget>& xs,
            const std::vector<Tensor>& ys) {
  const auto span = static_cast<std::size_t>(hi - lo + 1);
  Reach r{lo, std::vector<char>(span, 0), std::vector<char>(span, 0)};
  for (const auto& x : xs) {
    // An x recorded after every y (beyond hi) reaches none of them.
    const int n = x.tensor().node_index();
    if (n <= hi) r.from_x[static_cast<std::size_t>(n - lo)] = 1;
  }
  for (int n = lo; n <= hi; ++n) {
    auto& flag = r.from_x[static_cast<std::size_t>(n - lo)];
    for (const auto& in : graph.node(n).inputs) {
      if (flag) break;
      flag = r.from_an_x(in.node) ? 1 : 0;
    }
  }
  for (const auto& y : ys) {
    // A y recorded before every x (below lo) is reached by none of them.
    if (y.node_index() >= lo) r.to_y[static_cast<std::size_t>(y.node_index() - lo)] = 1;
  }
  for (int n = hi; n >= lo; --n) {
    if (!r.to_y[static_cast<std::size_t>(n - lo)]) continue;
    for (const auto& in : graph.node(n).inputs) {
      if (in.node >= lo) r.to_y[static_cast<std::size_t>(in.node - lo)] = 1;
    }
  }
  return r;
}

// Seeds the table with each floating y that some x reaches: grad_ys[i], or ones shaped like y.
void seed_ys(Graph& graph, GradientTable& table, const Reach& r, const std::vector<Tensor>& ys,
             const std::vector<Tensor>& grad_ys) {
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const Tensor& y = ys[i];
    if (!is_floating(y.dtype()) || !r.from_an_x(y.node_index())) continue;
    Tensor seed;
    if (!grad_ys.empty() && grad_ys[i]) {
      if (grad_ys[i].dtype() != y.dtype() || !grad_ys[i].shape().is_compatible_with(y.shape())) {
        throw ValueError(str("gradients: grad_ys[", i, "] is ", grad_ys[i].dtype(),
                             grad_ys[i].shape(), " but '", y.name(), "' is ", y.dtype(),
                             y.shape()));
      }
      seed = grad_ys[i];
    } else {
      const ContextScope in_context(graph, y.op().context);
      seed = ones_like(y);
    }
    table.add({y.node_index(), y.output_index()}, seed);
  }
}

// Records node n's gradient (its op's gradient function, in the node's control context and a
// "<name>_grad" name scope) for the inputs that come from an x and are floating, and adds what it
// sends back to the table. Nothing when no output has a gradient or no input wants one.
void back_propagate(Graph& graph, GradientTable& table, const Reach& r, int n) {
  const Node& node = graph.node(n);
  const auto num_outputs = node.outputs.size();
  std::vector<Tensor> grad_outputs(num_outputs);
  bool any = false;
  for (std::size_t k = 0; k < num_outputs; ++k) {
    grad_outputs[k] = table.total(n, static_cast<int>(k));
    any |= static_cast<bool>(grad_outputs[k]);
  }
  if (!any || node.op->gradient == nullptr) return;
  const auto num_inputs = node.inputs.size();
  std::vector<char> wants(num_inputs, 0);
  bool wanted = false;
  for (std::size_t i = 0; i < num_inputs; ++i) {
    const auto& in = node.inputs[i];
    wants[i] = r.from_an_x(in.node) && is_floating(graph.spec(in).dtype) ? 1 : 0;
    wanted |= wants[i] != 0;
  }
  if (!wanted) return;
  std::vector<Tensor> grad_inputs(num_inputs);
  {
    const ContextScope in_context(graph, node.context);
    const NameScope node_scope(graph, node.name.substr(node.name.rfind('/') + 1) + "_grad");
    GradContext ctx(graph, n, grad_outputs, wants, grad_inputs);
    node.op->gradient(ctx);
  }
  for (std::size_t i = 0; i < num_inputs; ++i) {
    if (grad_inputs[i]) table.add(node.inputs[i], grad_inputs[i]);
  }
}

}  // namespace

std::vector<Tensor> gradients(const std::vector<Tensor>& ys, const std::vector<GradTarget>& xs,
                              const std::vector<Tensor>& grad_ys) {
  if (ys.empty()) throw ValueError("gradients: ys is empty");
  if (!grad_ys.empty() && grad_ys.size() != ys.size()) {
    throw ValueError(str("gradients: ", ys.size(), " ys but ", grad_ys.size(), " grad_ys"));
  }
  Graph* graph_ptr = nullptr;
  for (const auto& y : ys) check_same_graph(y, graph_ptr, "ys");
  for (const auto& x : xs) check_same_graph(x.tensor(), graph_ptr, "xs");
  Graph& graph = *graph_ptr;
  std::vector<Tensor> result(xs.size());
  if (xs.empty()) return result;
  int lo = graph.num_nodes();
  int hi = -1;
  for (const auto& x : xs) lo = std::min(lo, x.tensor().node_index());
  for (const auto& y : ys) hi = std::max(hi, y.node_index());
  if (hi < lo) return result;
  const Reach r = reach(graph, lo, hi, xs, ys);
  const NameScope scope(graph, "gradients");
  GradientTable table(graph, lo, hi);
  seed_ys(graph, table, r, ys, grad_ys);
  // The backward sweep: the tape in reverse is a reverse topological order.
  for (int n = hi; n >= lo; --n) {
    if (r.between(n)) back_propagate(graph, table, r, n);
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i].tensor();
    // An x recorded after every y reaches none of them (and lies outside the table).
    if (!is_floating(x.dtype()) || x.node_index() > hi) continue;
    result[i] = table.total(x.node_index(), x.output_index());
  }
  return result;
}

std::vector<Tensor> gradients(const Tensor& y, const std::vector<GradTarget>& xs,
                              const std::vector<Tensor>& grad_ys) {
  return gradients(std::vector<Tensor>{y}, xs, grad_ys);
}

// ---- custom_gradient ----------------------------------------------------------------------------

namespace {

struct CustomGradientAttrs {
  int num_outputs;
  CustomGradientFn gradient;
};

void custom_forward_kernel(KernelContext& ctx) {
  const int k = ctx.attrs<CustomGradientAttrs>().num_outputs;
  for (int i = 0; i < k; ++i) ctx.set_output(i, ctx.input(i));
}

// A user's gradient function result for input `i` (node input `slot`): an empty Tensor means no
// gradient; anything else must be an output of this graph with the input's dtype and static shape.
void check_custom_result(const GradContext& g, int slot, int i, const Tensor& grad) {
  if (!grad) return;
  const Tensor in = g.input(slot);
  const auto prefix = [&] {
    return str("custom_gradient '", g.node().name, "': the gradient function's result for input ",
               i, " ('", in.name(), "') ");
  };
  if (&grad.graph() != &in.graph()) throw ValueError(prefix() + "belongs to another graph");
  if (grad.is_op())
    throw ValueError(prefix() + str("is the op '", grad.name(), "', which has no outputs"));
  if (grad.dtype() != in.dtype() || !grad.shape().is_compatible_with(in.shape())) {
    throw ValueError(prefix() + str("is ", grad.dtype(), grad.shape(), " but the input is ",
                                    in.dtype(), in.shape()));
  }
}

void custom_gradient_gradient(GradContext& g) {
  const auto& attrs = g.attrs<CustomGradientAttrs>();
  const int k = attrs.num_outputs;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;
  for (int i = k; i < g.num_inputs(); ++i) inputs.push_back(g.input(i));
  for (int i = 0; i < k; ++i) {
    outputs.push_back(g.output(i));
    grads.push_back(g.grad_output(i));
  }
  const auto result = attrs.gradient(inputs, outputs, grads);
  if (result.size() != inputs.size()) {
    throw ValueError(str("custom_gradient '", g.node().name, "': the gradient function returned ",
                         result.size(), " gradients for ", inputs.size(), " inputs"));
  }
  for (std::size_t i = 0; i < result.size(); ++i) {
    check_custom_result(g, k + static_cast<int>(i), static_cast<int>(i), result[i]);
    g.set(k + static_cast<int>(i), result[i]);
  }
}

const OpDef kCustomGradientOp{.name = "CustomGradient",
                              .kernel = custom_forward_kernel,
                              .gradient = custom_gradient_gradient};

}  // namespace

std::vector<Tensor> custom_gradient(
    const std::vector<Tensor>& inputs,
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& forward,
    CustomGradientFn gradient) {
  if (inputs.empty()) throw ValueError("custom_gradient: needs at least one input");
  if (!gradient) throw ValueError("custom_gradient: the gradient function is empty");
  const auto outputs = forward(inputs);
  if (outputs.empty())
    throw ValueError("custom_gradient: the forward function returned no tensors");
  std::vector<Tensor> node_inputs = outputs;
  node_inputs.insert(node_inputs.end(), inputs.begin(), inputs.end());
  std::vector<TensorSpec> specs;
  for (const auto& o : outputs) {
    if (!o || o.is_op())
      throw ValueError("custom_gradient: the forward function returned an empty Tensor");
    specs.push_back({o.dtype(), o.shape()});
  }
  return inputs.front().graph().record(
      kCustomGradientOp, node_inputs, std::move(specs),
      CustomGradientAttrs{static_cast<int>(outputs.size()), std::move(gradient)}, "CustomGradient");
}

}  // namespace ad
