// The variable summary table and the Graphviz DOT picture of a graph (autodiff/introspection.h).
#include "autodiff/introspection.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>

#include "autodiff/error.h"
#include "autodiff/file_util.h"
#include "autodiff/internal/plan.h"

namespace ad {

namespace {

std::size_t at(int i) { return static_cast<std::size_t>(i); }

// ---- summary ---------------------------------------------------------------------------------

// 1234567 -> "1,234,567".
std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  const auto first = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  out += digits.substr(0, first);
  for (auto i = first; i < digits.size(); i += 3) out += "," + digits.substr(i, 3);
  return out;
}

std::int64_t param_count(const Shape& shape) {
  return shape.is_fully_defined() ? shape.num_elements() : 0;
}

using Row = std::vector<std::string>;  // empty: a rule line; one cell "=": a double rule

constexpr int kParamsColumn = 3;  // right-aligned

std::string render_rows(const std::vector<Row>& rows) {
  std::vector<std::size_t> width(5, 0);
  for (const auto& row : rows) {
    if (row.size() < 2) continue;
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::size_t total = 0;
  for (auto w : width) total += w;
  total += 2 * (width.size() - 1);
  std::string out;
  for (const auto& row : rows) {
    if (row.size() < 2) {
      out += std::string(total, row.empty() ? '-' : '=') + "\n";
      continue;
    }
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const auto pad = std::string(width[c] - row[c].size(), ' ');
      line += c == kParamsColumn ? pad + row[c] : row[c] + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

std::string scope_of(const std::string& name) {
  const auto slash = name.rfind('/');
  return slash == std::string::npos ? "(root)" : name.substr(0, slash);
}

}  // namespace

std::string summary_table(const std::vector<Variable>& variables) {
  std::vector<std::string> scopes;  // in order of their first variable
  std::map<std::string, std::vector<const Variable*>, std::less<>> members;
  for (const auto& v : variables) {
    if (!v) throw ValueError("summary_table: the variable list holds an empty Variable");
    auto& list = members[scope_of(v.name())];
    if (list.empty()) scopes.push_back(scope_of(v.name()));
    list.push_back(&v);
  }
  std::vector<Row> rows{{"Scope / variable", "Shape", "DType", "Params", "Trainable"}, {"="}};
  std::int64_t total = 0;
  std::int64_t trainable = 0;
  for (std::size_t s = 0; s < scopes.size(); ++s) {
    if (s > 0) rows.emplace_back();
    std::int64_t scope_total = 0;
    const auto scope_row = rows.size();
    rows.push_back({scopes[s], "", "", "", ""});
    for (const Variable* v : members[scopes[s]]) {
      const auto n = param_count(v->shape());
      scope_total += n;
      if (v->trainable()) trainable += n;
      rows.push_back({"  " + v->name(), v->shape().to_string(), std::string(dtype_name(v->dtype())),
                      with_commas(n), v->trainable() ? "yes" : "no"});
    }
    rows[scope_row][kParamsColumn] = with_commas(scope_total);
    total += scope_total;
  }
  rows.push_back({"="});
  return render_rows(rows) + str("Total params: ", with_commas(total),
                                 "\nTrainable params: ", with_commas(trainable),
                                 "\nNon-trainable params: ", with_commas(total - trainable), "\n");
}

std::string summary_table(const Graph& graph) { return summary_table(global_variables(graph)); }

void print_summary(const Graph& graph, std::ostream& out) { out << summary_table(graph); }

namespace {

// ---- graphviz --------------------------------------------------------------------------------

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// "gradients", "gradients_1", ...: the scopes ad::gradients records under.
bool is_gradient_scope(std::string_view part) {
  if (!part.starts_with("gradients")) return false;
  part.remove_prefix(9);
  if (part.empty()) return true;
  if (part.front() != '_' || part.size() == 1) return false;
  return part.substr(1).find_first_not_of("0123456789") == std::string_view::npos;
}

bool in_gradient_scope(std::string_view name) {
  for (auto slash = name.find('/'); slash != std::string_view::npos; slash = name.find('/')) {
    if (is_gradient_scope(name.substr(0, slash))) return true;
    name.remove_prefix(slash + 1);
  }
  return false;
}

std::string fill_colour(const Node& node) {
  if (in_gradient_scope(node.name)) return "#f9c89b";
  if (node.op->name == "VariableV2") return "#c8e6c9";
  if (node.op->name == "Placeholder") return "#fff2a8";
  return "#d6e4f5";
}

std::string node_line(const Graph& graph, int i) {
  const Node& node = graph.node(i);
  const auto slash = node.name.rfind('/');
  std::string label = escape(node.op->name) + "\\n" +
                      escape(slash == std::string::npos ? node.name : node.name.substr(slash + 1));
  if (!node.outputs.empty()) {
    label += "\\n";
    for (std::size_t k = 0; k < node.outputs.size(); ++k) {
      label += (k > 0 ? " " : "") + node.outputs[k].shape.to_string();
    }
  }
  return str("n", i, " [label=\"", label, "\", tooltip=\"", escape(node.name), "\", fillcolor=\"",
             fill_colour(node), "\"];\n");
}

// A name scope: the nodes directly in it and its child scopes, in order of first appearance.
struct Cluster {
  std::vector<int> nodes;
  std::vector<std::string> children;  // full scope names
};

using Clusters = std::map<std::string, Cluster, std::less<>>;

// Registers `scope` and its ancestors; "" is the root.
void add_scope(Clusters& clusters, const std::string& scope) {
  if (clusters.contains(scope)) return;
  if (scope.empty()) {
    clusters[scope];
    return;
  }
  const auto slash = scope.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : scope.substr(0, slash);
  add_scope(clusters, parent);
  clusters[scope];
  clusters[parent].children.push_back(scope);
}

void write_cluster(const Graph& graph, const Clusters& clusters, const std::string& scope,
                   int depth, std::string& out) {
  const std::string indent(at(2 * depth), ' ');
  const Cluster& cluster = clusters.find(scope)->second;
  for (int i : cluster.nodes) out += indent + node_line(graph, i);
  for (const auto& child : cluster.children) {
    const auto slash = child.rfind('/');
    const std::string label = slash == std::string::npos ? child : child.substr(slash + 1);
    out += str(indent, "subgraph \"cluster_", escape(child), "\" {\n", indent, "  label=\"",
               escape(label), "\";\n");
    if (in_gradient_scope(child + "/")) out += indent + "  color=\"#e07b39\";\n";
    write_cluster(graph, clusters, child, depth + 1, out);
    out += indent + "}\n";
  }
}

std::vector<char> drawn_nodes(const Graph& graph, const GraphvizOptions& options) {
  if (options.fetches.empty()) return std::vector<char>(at(graph.num_nodes()), 1);
  for (const auto& f : options.fetches) {
    if (!f) throw ValueError("graphviz_dot: a fetch is an empty Tensor");
    if (&f.graph() != &graph) {
      throw ValueError(str("graphviz_dot: fetch '", f.name(), "' belongs to another graph"));
    }
  }
  const std::vector<char> fed(at(graph.num_nodes()), 0);
  return detail::prune(graph, options.fetches, fed);
}

}  // namespace

std::string graphviz_dot(const Graph& graph, const GraphvizOptions& options) {
  const auto drawn = drawn_nodes(graph, options);
  Clusters clusters;
  add_scope(clusters, "");
  for (int i = 0; i < graph.num_nodes(); ++i) {
    if (!drawn[at(i)]) continue;
    const auto& name = graph.node(i).name;
    const auto slash = name.rfind('/');
    const std::string scope = slash == std::string::npos ? "" : name.substr(0, slash);
    add_scope(clusters, scope);
    clusters[scope].nodes.push_back(i);
  }
  std::string out = str("digraph \"", escape(options.title), "\" {\n",
                        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", "
                        "fontsize=10];\n  edge [color=\"#555555\"];\n");
  write_cluster(graph, clusters, "", 1, out);
  for (int i = 0; i < graph.num_nodes(); ++i) {
    if (!drawn[at(i)]) continue;
    for (const auto& in : graph.node(i).inputs) {
      out += str("  n", in.node, " -> n", i,
                 in.index > 0 ? str(" [label=\":", in.index, "\"]") : "", ";\n");
    }
    for (int c : graph.node(i).control_inputs)
      out += str("  n", c, " -> n", i, " [style=dashed];\n");
  }
  return out + "}\n";
}

namespace {

[[noreturn]] void throw_write_error(const std::string& path, const std::string& what, int error) {
  std::string reason = std::strerror(error);
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(reason[0]));
  const auto message = str("write_graphviz '", path, "': ", what, ": ", reason);
  if (error == ENOENT || error == ENOTDIR) throw NotFoundError(message);
  throw FailedPreconditionError(message);
}

}  // namespace

void write_graphviz(const Graph& graph, const std::string& path, const GraphvizOptions& options) {
  if (path.empty()) throw ValueError("write_graphviz: the path is empty");
  detail::check_path("write_graphviz", path);
  const auto text = graphviz_dot(graph, options);
  const auto temp = str(path, ".tmp.", ::getpid());
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (file == nullptr) throw_write_error(path, str("cannot create '", temp, "'"), errno);
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const int write_errno = errno;
  if (std::fclose(file) != 0 || !written) {
    const int error = written ? errno : write_errno;
    std::remove(temp.c_str());
    throw_write_error(path, str("cannot write '", temp, "'"), error);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temp.c_str());
    throw_write_error(path, str("cannot rename '", temp, "' into place"), error);
  }
}

}  // namespace ad
