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
  const auto span = static_cast<std::size_t>(hi - lo + 1);
  // Nodes reached from some x (forward) and reaching some y (backward).
  std::vector<char> from_x(span, 0);
  for (const auto& x : xs) from_x[static_cast<std::size_t>(x.tensor().node_index() - lo)] = 1;
  for (int n = lo; n <= hi; ++n) {
    auto& flag = from_x[static_cast<std::size_t>(n - lo)];
    if (flag) continue;
    for (const auto& in : graph.node(n).inputs) {
      if (in.node >= lo && from_x[static_cast<std::size_t>(in.node - lo)]) {
        flag = 1;
        break;
      }
    }
  }
  std::vector<char> to_y(span, 0);
  for (const auto& y : ys) to_y[static_cast<std::size_t>(y.node_index() - lo)] = 1;
  for (int n = hi; n >= lo; --n) {
    if (!to_y[static_cast<std::size_t>(n - lo)]) continue;
    for (const auto& in : graph.node(n).inputs) {
      if (in.node >= lo) to_y[static_cast<std::size_t>(in.node - lo)] = 1;
    }
  }

  const NameScope scope(graph, "gradients");
  GradientTable table(graph, lo, hi);
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const Tensor& y = ys[i];
    if (!is_floating(y.dtype())) continue;
    if (!from_x[static_cast<std::size_t>(y.node_index() - lo)]) continue;
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

  std::vector<Tensor> grad_outputs;
  std::vector<char> wants;
  std::vector<Tensor> grad_inputs;
  for (int n = hi; n >= lo; --n) {
    const auto local = static_cast<std::size_t>(n - lo);
    if (!from_x[local] || !to_y[local]) continue;
    const Node& node = graph.node(n);
    const int num_outputs = static_cast<int>(node.outputs.size());
    grad_outputs.assign(static_cast<std::size_t>(num_outputs), Tensor());
    bool any = false;
    for (int k = 0; k < num_outputs; ++k) {
      grad_outputs[static_cast<std::size_t>(k)] = table.total(n, k);
      any |= static_cast<bool>(grad_outputs[static_cast<std::size_t>(k)]);
    }
    if (!any || node.op->gradient == nullptr) continue;
    const int num_inputs = static_cast<int>(node.inputs.size());
    wants.assign(static_cast<std::size_t>(num_inputs), 0);
    bool wanted = false;
    for (int i = 0; i < num_inputs; ++i) {
      const auto& in = node.inputs[static_cast<std::size_t>(i)];
      const bool w = in.node >= lo && from_x[static_cast<std::size_t>(in.node - lo)] &&
                     is_floating(graph.spec(in).dtype);
      wants[static_cast<std::size_t>(i)] = w ? 1 : 0;
      wanted |= w;
    }
    if (!wanted) continue;
    grad_inputs.assign(static_cast<std::size_t>(num_inputs), Tensor());
    {
      const ContextScope in_context(graph, node.context);
      const NameScope node_scope(graph, node.name.substr(node.name.rfind('/') + 1) + "_grad");
      GradContext ctx(graph, n, grad_outputs, wants, grad_inputs);
      node.op->gradient(ctx);
    }
    for (int i = 0; i < num_inputs; ++i) {
      if (grad_inputs[static_cast<std::size_t>(i)]) {
        table.add(node.inputs[static_cast<std::size_t>(i)],
                  grad_inputs[static_cast<std::size_t>(i)]);
      }
    }
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
