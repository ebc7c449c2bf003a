// Introspection: the variable summary table and the Graphviz DOT text of small hand-built graphs,
// compared with expected text written by hand from the documented layout; write_graphviz's file
// and its errors.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

// dense/kernel [3, 2], dense/bias [2], global_step (int64 scalar, not trainable), bn/moving_mean
// [2] (not trainable), created in that order.
void add_small_model_variables(ad::Graph& g) {
  (void)ad::Variable::create(g, "dense/kernel", {.shape = {3, 2}});
  (void)ad::Variable::create(g, "dense/bias", {.shape = {2}});
  (void)ad::Variable::create(g, "global_step",
                             {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  (void)ad::Variable::create(g, "bn/moving_mean", {.shape = {2}, .trainable = false});
}

// x, dy: placeholders [?, 3]; y = relu(x) in name scope "layer"; z = relu(x) after y (control
// dependency); dx = gradients(y, x, dy), recorded as one ReluGrad(dy, x) under "gradients".
struct ReluGraph {
  ad::Graph g;
  ad::Tensor x, dy, y, z, dx;
  ReluGraph() {
    x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
    dy = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "dy");
    {
      const ad::NameScope scope(g, "layer");
      y = ad::relu(x);
    }
    {
      const ad::ControlDependencies deps({y});
      z = ad::relu(x);
    }
    dx = ad::gradients({y}, {x}, {dy}).at(0);
  }
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(introspection_test)

BOOST_AUTO_TEST_CASE(summary_groups_variables_by_scope_with_counts_and_totals) {
  ad::Graph g;
  add_small_model_variables(g);
  const std::string expected =
      "Scope / variable  Shape   DType    Params  Trainable\n"
      "====================================================\n"
      "dense                                   8\n"
      "  dense/kernel    [3, 2]  float32       6  yes\n"
      "  dense/bias      [2]     float32       2  yes\n"
      "----------------------------------------------------\n"
      "(root)                                  1\n"
      "  global_step     []      int64         1  no\n"
      "----------------------------------------------------\n"
      "bn                                      2\n"
      "  bn/moving_mean  [2]     float32       2  no\n"
      "====================================================\n"
      "Total params: 11\n"
      "Trainable params: 8\n"
      "Non-trainable params: 3\n";
  BOOST_TEST(ad::summary_table(g) == expected);
  std::ostringstream printed;
  ad::print_summary(g, printed);
  BOOST_TEST(printed.str() == expected);
}

BOOST_AUTO_TEST_CASE(summary_of_a_chosen_list_groups_thousands) {
  ad::Graph g;
  add_small_model_variables(g);
  const auto big = ad::Variable::create(g, "wide/kernel", {.shape = {1000, 1234}});
  const std::string expected =
      "Scope / variable  Shape         DType       Params  Trainable\n"
      "=============================================================\n"
      "wide                                     1,234,000\n"
      "  wide/kernel     [1000, 1234]  float32  1,234,000  yes\n"
      "=============================================================\n"
      "Total params: 1,234,000\n"
      "Trainable params: 1,234,000\n"
      "Non-trainable params: 0\n";
  BOOST_TEST(ad::summary_table(std::vector<ad::Variable>{big}) == expected);
  BOOST_CHECK_EXCEPTION((void)ad::summary_table(std::vector<ad::Variable>{ad::Variable()}),
                        ad::ValueError, (MessageHas{{"summary_table", "empty Variable"}}));
}

BOOST_AUTO_TEST_CASE(summary_of_a_graph_without_variables) {
  ad::Graph g;
  const std::string expected =
      "Scope / variable  Shape  DType  Params  Trainable\n"
      "=================================================\n"
      "=================================================\n"
      "Total params: 0\n"
      "Trainable params: 0\n"
      "Non-trainable params: 0\n";
  BOOST_TEST(ad::summary_table(g) == expected);
}

BOOST_AUTO_TEST_CASE(dot_of_the_whole_graph_has_clusters_control_edges_and_gradient_style) {
  const ReluGraph m;
  const std::string expected =
      "digraph \"gradtape\" {\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
      "  edge [color=\"#555555\"];\n"
      "  n0 [label=\"Placeholder\\nx\\n[?, 3]\", tooltip=\"x\", fillcolor=\"#fff2a8\"];\n"
      "  n1 [label=\"Placeholder\\ndy\\n[?, 3]\", tooltip=\"dy\", fillcolor=\"#fff2a8\"];\n"
      "  n3 [label=\"Relu\\nRelu\\n[?, 3]\", tooltip=\"Relu\", fillcolor=\"#d6e4f5\"];\n"
      "  subgraph \"cluster_layer\" {\n"
      "    label=\"layer\";\n"
      "    n2 [label=\"Relu\\nRelu\\n[?, 3]\", tooltip=\"layer/Relu\", fillcolor=\"#d6e4f5\"];\n"
      "  }\n"
      "  subgraph \"cluster_gradients\" {\n"
      "    label=\"gradients\";\n"
      "    color=\"#e07b39\";\n"
      "    subgraph \"cluster_gradients/Relu_grad\" {\n"
      "      label=\"Relu_grad\";\n"
      "      color=\"#e07b39\";\n"
      "      n4 [label=\"ReluGrad\\nReluGrad\\n[?, 3]\", tooltip=\"gradients/Relu_grad/ReluGrad\", "
      "fillcolor=\"#f9c89b\"];\n"
      "    }\n"
      "  }\n"
      "  n0 -> n2;\n"
      "  n0 -> n3;\n"
      "  n2 -> n3 [style=dashed];\n"
      "  n1 -> n4;\n"
      "  n0 -> n4;\n"
      "}\n";
  BOOST_TEST(ad::graphviz_dot(m.g) == expected);
}

BOOST_AUTO_TEST_CASE(dot_with_fetches_keeps_only_what_they_need) {
  const ReluGraph m;
  // ReluGrad reads x, not y: neither Relu is needed, so the "layer" cluster disappears too.
  const std::string expected =
      "digraph \"grad\" {\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
      "  edge [color=\"#555555\"];\n"
      "  n0 [label=\"Placeholder\\nx\\n[?, 3]\", tooltip=\"x\", fillcolor=\"#fff2a8\"];\n"
      "  n1 [label=\"Placeholder\\ndy\\n[?, 3]\", tooltip=\"dy\", fillcolor=\"#fff2a8\"];\n"
      "  subgraph \"cluster_gradients\" {\n"
      "    label=\"gradients\";\n"
      "    color=\"#e07b39\";\n"
      "    subgraph \"cluster_gradients/Relu_grad\" {\n"
      "      label=\"Relu_grad\";\n"
      "      color=\"#e07b39\";\n"
      "      n4 [label=\"ReluGrad\\nReluGrad\\n[?, 3]\", tooltip=\"gradients/Relu_grad/ReluGrad\", "
      "fillcolor=\"#f9c89b\"];\n"
      "    }\n"
      "  }\n"
      "  n1 -> n4;\n"
      "  n0 -> n4;\n"
      "}\n";
  BOOST_TEST(ad::graphviz_dot(m.g, {.fetches = {m.dx}, .title = "grad"}) == expected);
}

BOOST_AUTO_TEST_CASE(dot_rejects_empty_and_foreign_fetches) {
  const ReluGraph m;
  const ReluGraph other;
  BOOST_CHECK_EXCEPTION((void)ad::graphviz_dot(m.g, {.fetches = {ad::Tensor()}}), ad::ValueError,
                        (MessageHas{{"graphviz_dot", "empty Tensor"}}));
  BOOST_CHECK_EXCEPTION((void)ad::graphviz_dot(m.g, {.fetches = {other.dx}}), ad::ValueError,
                        (MessageHas{{"graphviz_dot", "another graph"}}));
}

BOOST_AUTO_TEST_CASE(write_graphviz_writes_the_dot_text_atomically) {
  const ReluGraph m;
  const auto dir = std::filesystem::temp_directory_path() / "gradtape_introspection_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "graph.dot";
  ad::write_graphviz(m.g, path.string(), {.fetches = {m.dx}});
  BOOST_TEST(read_file(path) == ad::graphviz_dot(m.g, {.fetches = {m.dx}}));
  // Overwriting replaces the file and leaves no temporary file behind.
  ad::write_graphviz(m.g, path.string());
  BOOST_TEST(read_file(path) == ad::graphviz_dot(m.g));
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  BOOST_TEST(files == 1);
  const auto missing = (dir / "no_such_dir" / "graph.dot").string();
  BOOST_CHECK_EXCEPTION(ad::write_graphviz(m.g, missing), ad::NotFoundError,
                        (MessageHas{{"write_graphviz '" + missing + "'", "cannot create"}}));
  BOOST_CHECK_EXCEPTION(ad::write_graphviz(m.g, ""), ad::ValueError,
                        (MessageHas{{"write_graphviz", "path is empty"}}));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
