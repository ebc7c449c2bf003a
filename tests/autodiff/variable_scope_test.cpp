// Variable scopes and get_variable: TF1's reuse rules and their error texts, default-name
// uniquification, scoped collections and the regularization-loss sum.
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::Reuse;
using ad::VariableScope;
using ad::testing::MessageHas;

namespace {

ad::VariableOptions vector_of(std::int64_t n, ad::DType dtype = ad::DType::Float32) {
  return {.shape = {n}, .dtype = dtype};
}

std::vector<std::string> names_of(const std::vector<ad::Variable>& vars) {
  std::vector<std::string> names;
  for (const auto& v : vars) names.push_back(v.name());
  return names;
}

// What a TF1 layer does with name=None: a default-named scope, then its first variable.
std::string default_named_layer(ad::Graph& g, Reuse reuse = Reuse::kFalse) {
  const VariableScope scope(g, VariableScope::DefaultName{"batch_normalization"}, reuse);
  return ad::get_variable(g, "gamma", vector_of(3)).name();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(variable_scope_test)

BOOST_AUTO_TEST_CASE(nested_scopes_prefix_variable_and_op_names) {
  ad::Graph g;
  BOOST_TEST(ad::current_variable_scope(g) == "");
  ad::Tensor product;
  {
    const VariableScope outer(g, "outer");
    const VariableScope inner(g, "inner");
    BOOST_TEST(inner.name() == "outer/inner");
    BOOST_TEST(ad::current_variable_scope(g) == "outer/inner");
    const auto gamma = ad::get_variable(g, "gamma", vector_of(3));
    BOOST_TEST(gamma.name() == "outer/inner/gamma");
    BOOST_TEST(gamma.handle().name() == "outer/inner/gamma:0");
    product = gamma.value() * 2.0;
  }
  BOOST_TEST(ad::current_variable_scope(g) == "");
  BOOST_TEST(product.name().starts_with("outer/inner/"));
  BOOST_TEST(ad::get_variable(g, "top", vector_of(1)).name() == "top");
}

BOOST_AUTO_TEST_CASE(a_name_may_contain_slashes) {
  ad::Graph g;
  const VariableScope scope(g, "a/b");
  BOOST_TEST(ad::get_variable(g, "w", vector_of(2)).name() == "a/b/w");
}

BOOST_AUTO_TEST_CASE(creating_an_existing_variable_without_reuse_says_how_to_fix_it) {
  ad::Graph g;
  {
    const VariableScope bn(g, "bn");
    (void)ad::get_variable(g, "gamma", vector_of(3));
  }
  const VariableScope bn(g, "bn");
  BOOST_CHECK_EXCEPTION((void)ad::get_variable(g, "gamma", vector_of(3)), ad::ValueError,
                        (MessageHas{{"Variable bn/gamma already exists, disallowed. Did you mean "
                                     "to set reuse=true or reuse=auto in VariableScope?"}}));
}

BOOST_AUTO_TEST_CASE(reusing_a_missing_variable_is_an_error) {
  ad::Graph g;
  const VariableScope bn(g, "bn", Reuse::kTrue);
  BOOST_CHECK_EXCEPTION((void)ad::get_variable(g, "gamma", vector_of(3)), ad::ValueError,
                        (MessageHas{{"Variable bn/gamma does not exist, or was not created with "
                                     "get_variable(). Did you mean to set reuse=auto in "
                                     "VariableScope?"}}));
  BOOST_TEST(g.num_variables() == 0);
}

BOOST_AUTO_TEST_CASE(reuse_returns_the_existing_variable) {
  ad::Graph g;
  ad::Variable created;
  {
    const VariableScope bn(g, "bn");
    created = ad::get_variable(g, "gamma", vector_of(3));
  }
  const VariableScope bn(g, "bn", Reuse::kTrue);
  BOOST_TEST(bn.reuse() == Reuse::kTrue);
  const auto reused = ad::get_variable(g, "gamma", vector_of(3));
  BOOST_TEST((reused == created));
  BOOST_TEST(g.num_variables() == 1);
}

BOOST_AUTO_TEST_CASE(sharing_checks_shape_then_dtype) {
  ad::Graph g;
  {
    const VariableScope bn(g, "bn");
    (void)ad::get_variable(g, "gamma", vector_of(4));
  }
  const VariableScope bn(g, "bn", Reuse::kTrue);
  BOOST_CHECK_EXCEPTION(
      (void)ad::get_variable(g, "gamma", vector_of(3, ad::DType::Float64)), ad::ValueError,
      (MessageHas{{"Trying to share variable bn/gamma, but specified shape [3] and found shape "
                   "[4]."}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::get_variable(g, "gamma", vector_of(4, ad::DType::Float64)), ad::ValueError,
      (MessageHas{{"Trying to share variable bn/gamma, but specified dtype float64 and found "
                   "dtype float32."}}));
  // An unknown dim in the requested shape is compatible.
  BOOST_TEST(ad::get_variable(g, "gamma", {.shape = {-1}}).shape() == ad::Shape({4}));
}

BOOST_AUTO_TEST_CASE(auto_reuse_creates_when_missing_and_shares_when_present) {
  ad::Graph g;
  ad::Variable first;
  ad::Variable second;
  {
    const VariableScope scope(g, "shared", Reuse::kAuto);
    first = ad::get_variable(g, "w", vector_of(2));
  }
  {
    const VariableScope scope(g, "shared", Reuse::kAuto);
    second = ad::get_variable(g, "w", vector_of(2));
  }
  BOOST_TEST((first == second));
  BOOST_TEST(g.num_variables() == 1);
}

BOOST_AUTO_TEST_CASE(reuse_is_inherited_and_cannot_be_turned_off_below) {
  ad::Graph g;
  {
    const VariableScope a(g, "a");
    const VariableScope b(g, "b");
    (void)ad::get_variable(g, "w", vector_of(2));
  }
  const VariableScope a(g, "a", Reuse::kTrue);
  const VariableScope b(g, "b", Reuse::kFalse);
  BOOST_TEST(b.reuse() == Reuse::kTrue);
  BOOST_TEST(ad::current_reuse(g) == Reuse::kTrue);
  BOOST_TEST(ad::get_variable(g, "w", vector_of(2)).name() == "a/b/w");
  {
    const VariableScope c(g, "c", Reuse::kAuto);  // a given reuse overrides the inherited one
    BOOST_TEST(c.reuse() == Reuse::kAuto);
  }
  BOOST_TEST(ad::current_reuse(g) == Reuse::kTrue);
}

BOOST_AUTO_TEST_CASE(reuse_ignores_the_initializer_regularizer_and_constraint) {
  ad::Graph g;
  const auto loss = [](const ad::Tensor& w) { return ad::reduce_sum(w); };
  {
    const VariableScope scope(g, "s");
    (void)ad::get_variable(g, "w", {.shape = {2}, .regularizer = loss});
  }
  BOOST_TEST(g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES).size() == 1u);
  const VariableScope scope(g, "s", Reuse::kTrue);
  const auto w = ad::get_variable(
      g, "w",
      {.shape = {2}, .regularizer = loss, .constraint = [](const ad::Tensor& x) { return x; }});
  BOOST_TEST(g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES).size() == 1u);
  BOOST_TEST(!w.constraint());
}

BOOST_AUTO_TEST_CASE(default_names_are_uniquified_per_parent_scope) {
  ad::Graph g;
  BOOST_TEST(default_named_layer(g) == "batch_normalization/gamma");
  BOOST_TEST(default_named_layer(g) == "batch_normalization_1/gamma");
  BOOST_TEST(default_named_layer(g) == "batch_normalization_2/gamma");
  {
    const VariableScope a(g, "a");
    BOOST_TEST(default_named_layer(g) == "a/batch_normalization/gamma");
    BOOST_TEST(default_named_layer(g) == "a/batch_normalization_1/gamma");
  }
  {
    const VariableScope b(g, "b");
    BOOST_TEST(default_named_layer(g) == "b/batch_normalization/gamma");
  }
  // At the root, which is never left, the suffixes keep growing.
  BOOST_TEST(default_named_layer(g) == "batch_normalization_3/gamma");
}

BOOST_AUTO_TEST_CASE(an_explicitly_named_scope_counts_as_an_opening) {
  ad::Graph g;
  {
    const VariableScope named(g, "batch_normalization");
    (void)ad::get_variable(g, "gamma", vector_of(3));
  }
  BOOST_TEST(default_named_layer(g) == "batch_normalization_1/gamma");
}

BOOST_AUTO_TEST_CASE(leaving_a_named_scope_resets_the_counters_below_it) {
  ad::Graph g;
  {
    const VariableScope s(g, "s");
    BOOST_TEST(default_named_layer(g) == "s/batch_normalization/gamma");
  }
  {
    // Re-entering "s" asks for s/batch_normalization again, which exists: TF's error.
    const VariableScope s(g, "s");
    BOOST_CHECK_EXCEPTION((void)default_named_layer(g), ad::ValueError,
                          (MessageHas{{"Variable s/batch_normalization/gamma already exists"}}));
  }
  {
    const VariableScope s(g, "s", Reuse::kTrue);
    BOOST_TEST(default_named_layer(g) == "s/batch_normalization/gamma");
  }
  BOOST_TEST(g.num_variables() == 1);
}

BOOST_AUTO_TEST_CASE(a_default_name_with_reuse_is_used_without_suffix) {
  ad::Graph g;
  BOOST_TEST(default_named_layer(g) == "batch_normalization/gamma");
  BOOST_TEST(default_named_layer(g, Reuse::kTrue) == "batch_normalization/gamma");
  BOOST_TEST(default_named_layer(g, Reuse::kAuto) == "batch_normalization/gamma");
  BOOST_TEST(g.num_variables() == 1);
}

BOOST_AUTO_TEST_CASE(ops_get_a_unique_name_scope_while_variables_keep_the_scope_name) {
  ad::Graph g;
  ad::Tensor first;
  ad::Tensor second;
  {
    const VariableScope bn(g, "bn");
    BOOST_TEST(bn.name_scope() == "bn/");
    first = ad::get_variable(g, "gamma", vector_of(3)).value() * 2.0;
  }
  {
    const VariableScope bn(g, "bn", Reuse::kTrue);
    BOOST_TEST(bn.name() == "bn");
    BOOST_TEST(bn.name_scope() == "bn_1/");
    second = ad::get_variable(g, "gamma", vector_of(3)).value() * 2.0;
  }
  BOOST_TEST(first.name().starts_with("bn/"));
  BOOST_TEST(second.name().starts_with("bn_1/"));
}

BOOST_AUTO_TEST_CASE(a_captured_scope_is_reentered_by_its_full_name) {
  ad::Graph g;
  std::string captured;
  {
    const VariableScope model(g, "model");
    captured = model.name();
    (void)ad::get_variable(g, "w", vector_of(2));
  }
  const VariableScope other(g, "other");
  const VariableScope again(g, VariableScope::FullName{captured}, Reuse::kTrue);
  BOOST_TEST(again.name() == "model");
  BOOST_TEST(ad::get_variable(g, "w", vector_of(2)).name() == "model/w");
}

BOOST_AUTO_TEST_CASE(bad_scope_names_are_rejected) {
  ad::Graph g;
  BOOST_CHECK_EXCEPTION(VariableScope(g, ""), ad::ValueError,
                        (MessageHas{{"empty", "DefaultName"}}));
  BOOST_CHECK_EXCEPTION(VariableScope(g, "bn/"), ad::ValueError, (MessageHas{{"'bn/'", "'/'"}}));
  BOOST_CHECK_EXCEPTION((void)ad::get_variable(g, "", vector_of(1)), ad::ValueError,
                        (MessageHas{{"get_variable", "empty"}}));
  BOOST_CHECK_EXCEPTION((void)ad::get_variable(g, "v", {.shape = {-1, 3}}), ad::ValueError,
                        (MessageHas{{"'v'", "[?, 3]", "fully defined"}}));
}

BOOST_AUTO_TEST_CASE(collections_filter_by_scope_prefix_in_insertion_order) {
  ad::Graph g;
  {
    const VariableScope a(g, "a");
    (void)ad::get_variable(g, "w", vector_of(2));
    (void)ad::get_variable(g, "stat", {.shape = {2}, .trainable = false});
    (void)ad::get_variable(g, "avg",
                           {.shape = {2},
                            .trainable = false,
                            .collections = {std::string(ad::GraphKeys::MOVING_AVERAGE_VARIABLES)}});
  }
  {
    const VariableScope b(g, "b");
    (void)ad::get_variable(g, "w", vector_of(2));
  }
  (void)ad::get_variable(g, "ab", vector_of(1));
  using Names = std::vector<std::string>;
  BOOST_TEST(names_of(ad::global_variables(g)) == (Names{"a/w", "a/stat", "a/avg", "b/w", "ab"}),
             boost::test_tools::per_element());
  BOOST_TEST(names_of(ad::trainable_variables(g)) == (Names{"a/w", "b/w", "ab"}),
             boost::test_tools::per_element());
  BOOST_TEST(names_of(ad::variables_in_collection(g, ad::GraphKeys::GLOBAL_VARIABLES, "a/")) ==
                 (Names{"a/w", "a/stat", "a/avg"}),
             boost::test_tools::per_element());
  BOOST_TEST(names_of(ad::variables_in_collection(g, ad::GraphKeys::TRAINABLE_VARIABLES, "b/")) ==
                 (Names{"b/w"}),
             boost::test_tools::per_element());
  BOOST_TEST(names_of(ad::variables_in_collection(g, ad::GraphKeys::MOVING_AVERAGE_VARIABLES)) ==
                 (Names{"a/avg"}),
             boost::test_tools::per_element());
  // As TF's scope argument, the filter is a prefix: "a" also matches "ab".
  BOOST_TEST(g.get_collection(ad::GraphKeys::GLOBAL_VARIABLES, "a").size() == 4u);
}

BOOST_AUTO_TEST_CASE(a_scope_can_be_initialized_on_its_own) {
  ad::Graph g;
  ad::Variable a;
  ad::Variable b;
  {
    const VariableScope s(g, "a");
    a = ad::get_variable(g, "w", vector_of(2));
  }
  {
    const VariableScope s(g, "b");
    b = ad::get_variable(g, "w", vector_of(2));
  }
  const auto init_a = ad::variables_initializer(
      ad::variables_in_collection(g, ad::GraphKeys::GLOBAL_VARIABLES, "a/"));
  ad::Session s(g);
  s.run({init_a});
  BOOST_TEST(s.is_initialized(a));
  BOOST_TEST(!s.is_initialized(b));
  BOOST_CHECK_EXCEPTION((void)ad::variables_initializer({}), ad::ValueError,
                        (MessageHas{{"variables_initializer", "empty"}}));
}

BOOST_AUTO_TEST_CASE(regularization_loss_sums_the_collection_per_scope) {
  ad::Graph g;
  const auto l2 = [](const ad::Tensor& w) { return ad::reduce_sum(ad::square(w)) * 0.5; };
  const auto l1 = [](const ad::Tensor& w) { return ad::reduce_sum(ad::abs(w)); };
  ad::Variable a;
  ad::Variable b;
  {
    const VariableScope s(g, "a");
    a = ad::get_variable(g, "w", {.shape = {3}, .dtype = ad::DType::Float64, .regularizer = l2});
  }
  {
    const VariableScope s(g, "b");
    b = ad::get_variable(g, "w", {.shape = {2}, .dtype = ad::DType::Float64, .regularizer = l1});
    (void)ad::get_variable(g, "no_reg", {.shape = {2}, .dtype = ad::DType::Float64});
  }
  const auto losses = g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES);
  BOOST_TEST(losses.size() == 2u);
  BOOST_TEST(losses[0].name().starts_with("a/w/Regularizer/"));
  const auto total = ad::get_regularization_loss(g);
  const auto only_b = ad::get_regularization_loss(g, "b/");
  const auto none = ad::get_regularization_loss(g, "c/");
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.set_value(a, ad::Array::from<double>({1, -2, 3}, {3}));
  s.set_value(b, ad::Array::from<double>({-4, 5}, {2}));
  const auto out = s.run({total, only_b, none});
  BOOST_TEST(out[0].item<double>() == 0.5 * (1 + 4 + 9) + (4 + 5));
  BOOST_TEST(out[1].item<double>() == 9.0);
  BOOST_TEST(none.dtype() == ad::DType::Float32);
  BOOST_TEST(out[2].item<float>() == 0.0f);
}

BOOST_AUTO_TEST_CASE(regularization_losses_of_mixed_dtypes_are_an_error) {
  ad::Graph g;
  const auto l1 = [](const ad::Tensor& w) { return ad::reduce_sum(ad::abs(w)); };
  (void)ad::get_variable(g, "x", {.shape = {2}, .regularizer = l1});
  (void)ad::get_variable(g, "y", {.shape = {2}, .dtype = ad::DType::Float64, .regularizer = l1});
  BOOST_CHECK_EXCEPTION((void)ad::get_regularization_loss(g), ad::ValueError,
                        (MessageHas{{"get_regularization_loss", "float64", "float32"}}));
}

BOOST_AUTO_TEST_SUITE_END()
