// Looking at a model: a Keras-style summary of its variables (ad::summary_table, print_summary)
// and a picture of its graph as Graphviz DOT (ad::graphviz_dot, write_graphviz; render the file
// with scripts/render-graph).
#pragma once

#include <iostream>
#include <string>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"

namespace ad {

// One row per variable, grouped under the variable scope that holds it (its name up to the last
// "/"; "(root)" for variables outside any scope), scopes in order of their first variable, then the
// total, trainable and non-trainable parameter counts. The no-argument-list form lists the graph's
// global variables, optimizer slots included; pass a list (e.g. trainable_variables(graph) taken
// before the optimizer is built) to see only those. A dimension unknown at graph time counts as 0
// and prints as "?".
[[nodiscard]] std::string summary_table(const Graph& graph);
[[nodiscard]] std::string summary_table(const std::vector<Variable>& variables);
void print_summary(const Graph& graph, std::ostream& out = std::cout);

struct GraphvizOptions {
  // Draw only the nodes these need (as Session::run would prune); every node when empty.
  std::vector<Tensor> fetches{};
  // The graph's name in the DOT file.
  std::string title = "gradtape";
};

// The graph as Graphviz DOT: one box per node labelled with its op type, its name within its scope
// and its output shapes; an edge from each input to its consumer (dashed for control
// dependencies, labelled ":<i>" for an output index above 0); each name scope a cluster. Nodes
// recorded by ad::gradients (under a "gradients" name scope, at any depth) are filled orange,
// variables green, placeholders yellow, the rest blue. ValueError when a fetch is empty or belongs
// to another graph.
[[nodiscard]] std::string graphviz_dot(const Graph& graph, const GraphvizOptions& options = {});
// Writes graphviz_dot(...) to `path` through a temporary file renamed into place, so `path` is
// never left half-written. NotFoundError when the directory does not exist, FailedPreconditionError
// on other I/O failures; both name the path.
void write_graphviz(const Graph& graph, const std::string& path,
                    const GraphvizOptions& options = {});

}  // namespace ad
