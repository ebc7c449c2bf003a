// Graph: recording order, names and name scopes, collections, control dependencies (TF1's
// None / [] / nested semantics) and look-ups by name.
#include <algorithm>
#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {
std::vector<std::string> control_input_names(const ad::Tensor& t) {
  std::vector<std::string> names;
  for (int c : t.op().control_inputs) names.push_back(t.graph().node(c).name);
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(graph_test)

BOOST_AUTO_TEST_CASE(nodes_are_numbered_in_recording_order) {
  ad::Graph g;
  BOOST_TEST(g.num_nodes() == 0);
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  auto y = ad::placeholder(g, ad::DType::Float32, {2}, "y");
  auto z = x + y;
  BOOST_TEST(x.node_index() == 0);
  BOOST_TEST(y.node_index() == 1);
  BOOST_TEST(z.node_index() == 2);
  BOOST_TEST(g.num_nodes() == 3);
  // Every input comes before its consumer: recording order is a topological order.
  for (int i = 0; i < g.num_nodes(); ++i) {
    for (const auto& in : g.node(i).inputs) BOOST_TEST(in.node < i);
  }
  BOOST_TEST(g.node(2).inputs.size() == 2U);
  BOOST_TEST(g.node(2).inputs[1].node == 1);
}

BOOST_AUTO_TEST_CASE(names_are_made_unique_within_their_scope) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {}, "a");
  auto a1 = ad::placeholder(g, ad::DType::Float32, {}, "a");
  auto a2 = ad::placeholder(g, ad::DType::Float32, {}, "a");
  BOOST_TEST(a.name() == "a:0");
  BOOST_TEST(a1.name() == "a_1:0");
  BOOST_TEST(a2.name() == "a_2:0");
  // A name taken explicitly is skipped by the counter.
  ad::Graph h;
  auto b1 = ad::placeholder(h, ad::DType::Float32, {}, "b_1");
  auto b = ad::placeholder(h, ad::DType::Float32, {}, "b");
  auto b_next = ad::placeholder(h, ad::DType::Float32, {}, "b");
  BOOST_TEST(b1.name() == "b_1:0");
  BOOST_TEST(b.name() == "b:0");
  BOOST_TEST(b_next.name() == "b_2:0");
}

BOOST_AUTO_TEST_CASE(name_scopes_nest_uniquify_and_reenter) {
  ad::Graph g;
  ad::Tensor inner;
  ad::Tensor again;
  ad::Tensor reentered;
  {
    const ad::NameScope layer(g, "layer");
    BOOST_TEST(layer.name() == "layer/");
    const ad::NameScope dense(g, "dense");
    inner = ad::placeholder(g, ad::DType::Float32, {}, "w");
  }
  {
    const ad::NameScope layer(g, "layer");
    BOOST_TEST(layer.name() == "layer_1/");
    again = ad::placeholder(g, ad::DType::Float32, {}, "w");
  }
  {
    const ad::NameScope layer(g, "layer/");  // a trailing slash re-enters the scope as is
    reentered = ad::placeholder(g, ad::DType::Float32, {}, "w");
    const ad::NameScope root(g, "/");
    BOOST_TEST(g.name_scope().empty());
  }
  BOOST_TEST(g.name_scope().empty());
  BOOST_TEST(inner.name() == "layer/dense/w:0");
  BOOST_TEST(again.name() == "layer_1/w:0");
  BOOST_TEST(reentered.name() == "layer/w:0");
  BOOST_TEST(g.find_node("layer/dense/w") == inner.node_index());
  BOOST_TEST(g.find_node("layer/dense/nothing") == -1);
}

BOOST_AUTO_TEST_CASE(collections_keep_insertion_order_and_filter_by_scope) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {}, "a");
  ad::Tensor b;
  {
    const ad::NameScope scope(g, "block");
    b = ad::placeholder(g, ad::DType::Float32, {}, "b");
  }
  g.add_to_collection("things", b);
  g.add_to_collection("things", a);
  const auto all = g.get_collection("things");
  BOOST_TEST(all.size() == 2U);
  BOOST_TEST((all[0] == b));
  BOOST_TEST((all[1] == a));
  const auto scoped = g.get_collection("things", "block");
  BOOST_TEST(scoped.size() == 1U);
  BOOST_TEST((scoped[0] == b));
  BOOST_TEST(g.get_collection("missing").empty());
  BOOST_TEST(g.collection_keys() == (std::vector<std::string>{"things"}),
             boost::test_tools::per_element());
  ad::Graph other;
  auto foreign = ad::placeholder(other, ad::DType::Float32, {}, "f");
  BOOST_CHECK_EXCEPTION(g.add_to_collection("things", foreign), ad::ValueError,
                        (MessageHas{{"another graph"}}));
}

BOOST_AUTO_TEST_CASE(control_dependencies_attach_to_nodes_recorded_inside) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {}, "x");
  auto first = ad::no_op(g, "first");
  ad::Tensor inside;
  {
    const ad::ControlDependencies deps({first});
    inside = x * 2.0;  // records a constant and a Mul, both after `first`
  }
  auto outside = x * 3.0;
  BOOST_TEST(control_input_names(inside) == (std::vector<std::string>{"first"}),
             boost::test_tools::per_element());
  BOOST_TEST(control_input_names(outside).empty());
}

BOOST_AUTO_TEST_CASE(nested_control_dependencies_accumulate) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {}, "x");
  auto a = ad::no_op(g, "a");
  auto b = ad::no_op(g, "b");
  ad::Tensor both;
  {
    const ad::ControlDependencies outer({a});
    const ad::ControlDependencies inner({b});
    both = ad::identity(x);
  }
  BOOST_TEST(control_input_names(both) == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
}

// TF1: control_dependencies([]) adds nothing and keeps the enclosing dependencies.
BOOST_AUTO_TEST_CASE(an_empty_list_keeps_the_enclosing_dependencies) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {}, "x");
  auto assign = ad::no_op(g, "assign");
  ad::Tensor kept;
  ad::Tensor kept_too;
  ad::Tensor alone;
  {
    const ad::ControlDependencies outer({assign});
    const std::vector<ad::Tensor> no_updates = g.get_collection(ad::GraphKeys::UPDATE_OPS);
    {
      const ad::ControlDependencies inner(no_updates);  // no graph needed
      kept = ad::identity(x);
    }
    {
      const ad::ControlDependencies inner(g, no_updates);
      kept_too = ad::identity(x);
    }
  }
  {
    const ad::ControlDependencies empty(std::span<const ad::Tensor>{});
    alone = ad::identity(x);
  }
  BOOST_TEST(control_input_names(kept) == (std::vector<std::string>{"assign"}),
             boost::test_tools::per_element());
  BOOST_TEST(control_input_names(kept_too) == (std::vector<std::string>{"assign"}),
             boost::test_tools::per_element());
  BOOST_TEST(control_input_names(alone).empty());
}

// TF1: control_dependencies(None) clears the enclosing dependencies.
BOOST_AUTO_TEST_CASE(the_none_form_clears_the_enclosing_dependencies) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {}, "x");
  auto a = ad::no_op(g, "a");
  auto b = ad::no_op(g, "b");
  ad::Tensor cleared;
  ad::Tensor cleared_too;
  ad::Tensor after_clear;
  ad::Tensor restored;
  {
    const ad::ControlDependencies outer({a});
    {
      const ad::ControlDependencies none(g, std::nullopt);
      cleared = ad::identity(x);
      const ad::ControlDependencies inner({b});
      after_clear = ad::identity(x);  // only what was added after the clearing frame
    }
    {
      const auto none = ad::ControlDependencies::clear(g);
      cleared_too = ad::identity(x);
    }
    restored = ad::identity(x);
  }
  BOOST_TEST(control_input_names(cleared).empty());
  BOOST_TEST(control_input_names(cleared_too).empty());
  BOOST_TEST(control_input_names(after_clear) == (std::vector<std::string>{"b"}),
             boost::test_tools::per_element());
  BOOST_TEST(control_input_names(restored) == (std::vector<std::string>{"a"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(control_dependencies_reject_foreign_or_empty_tensors) {
  ad::Graph g;
  ad::Graph other;
  auto mine = ad::no_op(g, "mine");
  auto foreign = ad::no_op(other, "foreign");
  BOOST_CHECK_EXCEPTION(ad::ControlDependencies({mine, foreign}), ad::ValueError,
                        (MessageHas{{"different graphs"}}));
  const ad::Tensor with_empty[] = {mine, ad::Tensor()};
  BOOST_CHECK_EXCEPTION(ad::ControlDependencies(g, with_empty), ad::ValueError,
                        (MessageHas{{"empty Tensor"}}));
}

BOOST_AUTO_TEST_CASE(tensors_and_operations_are_found_by_name) {
  ad::Graph g;
  ad::Tensor h;
  {
    const ad::NameScope scope(g, "scope");
    auto x = ad::placeholder(g, ad::DType::Float32, {2}, "input");
    h = ad::relu(x);
  }
  auto op = ad::no_op(g, "train");
  BOOST_TEST((g.get_tensor_by_name(h.name()) == h));
  BOOST_TEST((g.get_tensor_by_name("scope/input:0").node_index() == 0));
  BOOST_TEST((g.get_operation_by_name("train") == op));
  BOOST_TEST((g.get_operation_by_name("scope/input").node_index() == 0));
  BOOST_CHECK_EXCEPTION((void)g.get_tensor_by_name("scope/inputs:0"), ad::NotFoundError,
                        (MessageHas{{"'scope/inputs:0'", "scope/input:0"}}));
  BOOST_CHECK_EXCEPTION((void)g.get_tensor_by_name("scope/input:1"), ad::NotFoundError,
                        (MessageHas{{"'scope/input:1'", "1 output", "scope/input:0"}}));
  BOOST_CHECK_EXCEPTION((void)g.get_tensor_by_name("scope/input"), ad::ValueError,
                        (MessageHas{{"'scope/input'", "<op>:<index>"}}));
  BOOST_CHECK_EXCEPTION((void)g.get_tensor_by_name("train:0"), ad::NotFoundError,
                        (MessageHas{{"'train:0'", "0 outputs"}}));
  BOOST_CHECK_EXCEPTION((void)g.get_operation_by_name("trian"), ad::NotFoundError,
                        (MessageHas{{"'trian'", "train"}}));
}

BOOST_AUTO_TEST_CASE(variables_are_found_by_full_name) {
  ad::Graph g;
  ad::Variable w;
  {
    const ad::VariableScope scope(g, "dense");
    w = ad::get_variable(g, "kernel", {.shape = {2, 3}});
  }
  const auto found = ad::get_variable_by_name(g, "dense/kernel");
  BOOST_TEST(found.id() == w.id());
  BOOST_TEST(found.name() == "dense/kernel");
  BOOST_CHECK_EXCEPTION((void)ad::get_variable_by_name(g, "dense/kernal"), ad::NotFoundError,
                        (MessageHas{{"'dense/kernal'", "dense/kernel"}}));
}

BOOST_AUTO_TEST_SUITE_END()
