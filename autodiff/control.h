// Control flow: cond with a run-time predicate (only the taken branch runs, and only it receives
// gradients), and smart_cond, which decides at graph-building time when the predicate is a bool.
#pragma once

#include <functional>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad {

struct Node;

// Runs true_fn's or false_fn's nodes depending on the boolean scalar `pred`; the branches must
// return tensors of matching dtypes and ranks. Nothing computed in the untaken branch (a NaN, an
// error) reaches the result or its gradient.
[[nodiscard]] std::vector<Tensor> cond(const Tensor& pred,
                                       const std::function<std::vector<Tensor>()>& true_fn,
                                       const std::function<std::vector<Tensor>()>& false_fn);
[[nodiscard]] Tensor cond(const Tensor& pred, const std::function<Tensor()>& true_fn,
                          const std::function<Tensor()>& false_fn);

// A predicate known when the graph is built (bool) or at run time (boolean scalar Tensor).
using Predicate = std::variant<bool, Tensor>;

// The bool value of `pred` when it is known while building: a C++ bool, or a Const tensor.
[[nodiscard]] std::optional<bool> static_value(const Predicate& pred);

// Like cond, but a statically known predicate records only the taken branch.
[[nodiscard]] std::vector<Tensor> smart_cond(const Predicate& pred,
                                             const std::function<std::vector<Tensor>()>& true_fn,
                                             const std::function<std::vector<Tensor>()>& false_fn);
[[nodiscard]] Tensor smart_cond(const Predicate& pred, const std::function<Tensor()>& true_fn,
                                const std::function<Tensor()>& false_fn);

namespace detail {
// Merges a value computed in a true-branch context with one from its false-branch sibling (used
// by cond and by reverse mode when a gradient leaves a branch).
[[nodiscard]] Tensor merge(const Tensor& if_true, const Tensor& if_false, int true_context,
                           int false_context);
// The {true, false} contexts a Merge node joins; nullopt for any other node (used to copy a
// while loop's body).
[[nodiscard]] std::optional<std::pair<int, int>> merge_contexts(const Node& node);
}  // namespace detail

}  // namespace ad
