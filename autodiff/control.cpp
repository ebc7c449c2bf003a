// cond: branch contexts plus a Merge node per output.
#include "autodiff/control.h"

#include <optional>

#include "autodiff/array.h"
#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"

namespace ad {

namespace {

struct MergeAttrs {
  int true_context;
  int false_context;
};

void merge_kernel(KernelContext& ctx) {
  if (ctx.has_input(0)) {
    ctx.set_output(0, ctx.input(0));
  } else if (ctx.has_input(1)) {
    ctx.set_output(0, ctx.input(1));
  } else {
    ctx.fail("neither branch produced a value");
  }
}

// Each branch's share of the gradient is recorded inside that branch, so it runs only when the
// branch was taken.
void merge_gradient(GradContext& g) {
  const auto& attrs = g.attrs<MergeAttrs>();
  const Tensor dy = g.grad_output(0);
  {
    const ContextScope in_true(g.graph(), attrs.true_context);
    g.set(0, identity(dy));
  }
  {
    const ContextScope in_false(g.graph(), attrs.false_context);
    g.set(1, identity(dy));
  }
}

const OpDef kMergeOp{.name = "Merge",
                     .kernel = merge_kernel,
                     .gradient = merge_gradient,
                     .accepts_missing_inputs = true};

Shape merged_shape(const Tensor& a, const Tensor& b, std::size_t i) {
  if (a.dtype() != b.dtype()) {
    throw ValueError(str("cond: output ", i, " is ", a.dtype(), " in the true branch but ",
                         b.dtype(), " in the false branch"));
  }
  if (a.shape().rank() != b.shape().rank()) {
    throw ValueError(str("cond: output ", i, " has shape ", a.shape(), " in the true branch but ",
                         b.shape(), " in the false branch"));
  }
  Shape s = a.shape();
  for (int d = 0; d < s.rank(); ++d) {
    if (s[d] != b.shape()[d]) s[d] = -1;
  }
  return s;
}

std::vector<Tensor> run_branch(Graph& graph, int context,
                               const std::function<std::vector<Tensor>()>& fn) {
  const ContextScope scope(graph, context);
  std::vector<Tensor> outs = fn();
  for (auto& t : outs) {
    if (!t || t.is_op())
      throw ValueError("cond: a branch returned an empty Tensor or an op without outputs");
    if (&t.graph() != &graph) throw ValueError("cond: a branch returned a tensor of another graph");
    t = identity(t);  // produced inside the branch, so Merge can tell which branch ran
  }
  return outs;
}

}  // namespace

std::vector<Tensor> cond(const Tensor& pred, const std::function<std::vector<Tensor>()>& true_fn,
                         const std::function<std::vector<Tensor>()>& false_fn) {
  if (!pred) throw ValueError("cond: the predicate is an empty Tensor");
  if (pred.dtype() != DType::Bool || pred.shape().rank() != 0) {
    throw ValueError(str("cond: the predicate '", pred.name(), "' must be a bool scalar, not ",
                         pred.dtype(), pred.shape()));
  }
  Graph& graph = pred.graph();
  const int parent = graph.current_context();
  const NameScope scope(graph, "cond");
  const TensorRef pred_ref{pred.node_index(), pred.output_index()};
  const auto [true_context, false_context] = graph.add_cond_contexts(pred_ref, parent);
  const auto outs_true = run_branch(graph, true_context, true_fn);
  const auto outs_false = run_branch(graph, false_context, false_fn);
  if (outs_true.size() != outs_false.size()) {
    throw ValueError(str("cond: the true branch returned ", outs_true.size(),
                         " tensors but the false branch ", outs_false.size()));
  }
  std::vector<Tensor> result;
  for (std::size_t i = 0; i < outs_true.size(); ++i) {
    (void)merged_shape(outs_true[i], outs_false[i], i);  // checks, naming the output
    result.push_back(detail::merge(outs_true[i], outs_false[i], true_context, false_context));
  }
  return result;
}

Tensor cond(const Tensor& pred, const std::function<Tensor()>& true_fn,
            const std::function<Tensor()>& false_fn) {
  return cond(
             pred, [&] { return std::vector<Tensor>{true_fn()}; },
             [&] { return std::vector<Tensor>{false_fn()}; })
      .front();
}

namespace detail {
Tensor merge(const Tensor& if_true, const Tensor& if_false, int true_context, int false_context) {
  const Shape shape = merged_shape(if_true, if_false, 0);
  const Tensor inputs[] = {if_true, if_false};
  return if_true.graph().record1(kMergeOp, inputs, {if_true.dtype(), shape},
                                 MergeAttrs{true_context, false_context}, "Merge");
}

std::optional<std::pair<int, int>> merge_contexts(const Node& node) {
  if (node.op != &kMergeOp) return std::nullopt;
  const auto& attrs = std::any_cast<const MergeAttrs&>(node.attrs);
  return std::pair{attrs.true_context, attrs.false_context};
}
}  // namespace detail

std::optional<bool> static_value(const Predicate& pred) {
  if (const bool* b = std::get_if<bool>(&pred)) return *b;
  const Tensor& t = std::get<Tensor>(pred);
  if (!t) throw ValueError("smart_cond: the predicate is an empty Tensor");
  // Constant predicates are folded, as TF's smart_cond does.
  if (const auto value = constant_value(t);
      value && value->dtype() == DType::Bool && value->size() == 1) {
    return value->data<bool>()[0];
  }
  return std::nullopt;
}

std::vector<Tensor> smart_cond(const Predicate& pred,
                               const std::function<std::vector<Tensor>()>& true_fn,
                               const std::function<std::vector<Tensor>()>& false_fn) {
  if (const auto value = static_value(pred)) return *value ? true_fn() : false_fn();
  return cond(std::get<Tensor>(pred), true_fn, false_fn);
}

Tensor smart_cond(const Predicate& pred, const std::function<Tensor()>& true_fn,
                  const std::function<Tensor()>& false_fn) {
  if (const auto value = static_value(pred)) return *value ? true_fn() : false_fn();
  return cond(std::get<Tensor>(pred), true_fn, false_fn);
}

}  // namespace ad
