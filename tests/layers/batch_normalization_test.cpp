// batch_normalization: variables, names, scopes and reuse, collections, UPDATE_OPS, configuration
// resolution and every construction-time error (spec §2, §3, §4, §8).
#include "layers/batch_normalization.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "autodiff/variable_scope.h"
#include "autodiff/warnings.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;

namespace {
std::vector<std::string> names(const std::vector<ad::Variable>& vars) {
  std::vector<std::string> out;
  for (const auto& v : vars) out.push_back(v.name());
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(batch_normalization_test)

BOOST_AUTO_TEST_CASE(default_names_are_uniquified_per_call) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  (void)L::batch_normalization(x);
  (void)L::batch_normalization(x);
  const std::vector<std::string> expected{
      "batch_normalization/gamma",         "batch_normalization/beta",
      "batch_normalization/moving_mean",   "batch_normalization/moving_variance",
      "batch_normalization_1/gamma",       "batch_normalization_1/beta",
      "batch_normalization_1/moving_mean", "batch_normalization_1/moving_variance"};
  BOOST_TEST(names(ad::global_variables(g)) == expected, boost::test_tools::per_element());
  const std::vector<std::string> trainable{"batch_normalization/gamma", "batch_normalization/beta",
                                           "batch_normalization_1/gamma",
                                           "batch_normalization_1/beta"};
  BOOST_TEST(names(ad::trainable_variables(g)) == trainable, boost::test_tools::per_element());
  BOOST_TEST(g.get_collection(ad::GraphKeys::MOVING_AVERAGE_VARIABLES).empty());
}

BOOST_AUTO_TEST_CASE(parameter_shapes_follow_the_axes) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {5, 4, 3}, "a");
  L::BatchNormalization list_axes({.axis = {1, 2}});
  (void)list_axes(a, true);
  BOOST_TEST(list_axes.gamma().shape() == ad::Shape({1, 4, 3}));
  BOOST_TEST(list_axes.config().broadcast_shape == ad::Shape({1, 4, 3}));
  auto b = ad::placeholder(g, ad::DType::Float32, {6, 10, 10, 3}, "b");
  L::BatchNormalization ghost({.axis = 3, .virtual_batch_size = 2});
  (void)ghost(b, true);
  BOOST_TEST(ghost.moving_mean().shape() == ad::Shape({1, 1, 1, 1, 3}));
  auto c = ad::placeholder(g, ad::DType::Float32, {6, 2}, "c");
  L::BatchNormalization ghost2({.virtual_batch_size = 3});
  (void)ghost2(c, true);
  BOOST_TEST(ghost2.beta().shape() == ad::Shape({1, 1, 2}));
  auto d = ad::placeholder(g, ad::DType::Float32, {-1, 8, 5, 5}, "d");
  L::BatchNormalization nchw({.axis = 1});
  (void)nchw(d, true);
  BOOST_TEST(nchw.gamma().shape() == ad::Shape({8}));
  BOOST_TEST(nchw.config().broadcast_shape == ad::Shape({1, 8, 1, 1}));
}

BOOST_AUTO_TEST_CASE(renorm_creates_its_three_variables_in_order) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  (void)L::batch_normalization(x, {.name = "bn", .renorm = true});
  const std::vector<std::string> expected{
      "bn/gamma",         "bn/beta",        "bn/moving_mean",  "bn/moving_variance",
      "bn/moving_stddev", "bn/renorm_mean", "bn/renorm_stddev"};
  BOOST_TEST(names(ad::global_variables(g)) == expected, boost::test_tools::per_element());
  BOOST_TEST(ad::trainable_variables(g).size() == 2u);
}

BOOST_AUTO_TEST_CASE(center_and_scale_off_create_no_gamma_or_beta) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  L::BatchNormalization layer({.center = false, .scale = false});
  (void)layer(x);
  BOOST_TEST(!layer.gamma());
  BOOST_TEST(!layer.beta());
  BOOST_TEST(names(ad::global_variables(g)) ==
                 (std::vector<std::string>{"batch_normalization/moving_mean",
                                           "batch_normalization/moving_variance"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(named_layers_and_reuse_follow_tf1_rules) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  (void)L::batch_normalization(x, {.name = "bn"});
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x, {.name = "bn"}), ad::ValueError,
                        (MessageHas{{"Variable bn/gamma already exists"}}));
  const auto before = ad::global_variables(g).size();
  (void)L::batch_normalization(x, {.name = "bn", .reuse = ad::Reuse::kTrue});
  BOOST_TEST(ad::global_variables(g).size() == before);
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x, {.name = "other", .reuse = ad::Reuse::kTrue}), ad::ValueError,
      (MessageHas{{"Variable other/gamma does not exist"}}));
  (void)L::batch_normalization(x, {.name = "auto", .reuse = ad::Reuse::kAuto});
  (void)L::batch_normalization(x, {.name = "auto", .reuse = ad::Reuse::kAuto});
  BOOST_TEST(ad::global_variables(g).size() == before + 4);
  // The first variable requested names the error: beta when there is no gamma.
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x, {.scale = false, .name = "bn"}),
                        ad::ValueError, (MessageHas{{"Variable bn/beta already exists"}}));
  auto wide = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "wide");
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(wide, {.name = "bn", .reuse = ad::Reuse::kTrue}), ad::ValueError,
      (MessageHas{{"Trying to share variable bn/gamma", "[4]", "[3]"}}));
}

BOOST_AUTO_TEST_CASE(scopes_prefix_names_and_pass_reuse_down) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  {
    ad::VariableScope s(g, "s");
    (void)L::batch_normalization(x);
  }
  BOOST_TEST(ad::global_variables(g)[0].name() == "s/batch_normalization/gamma");
  {
    ad::VariableScope s(g, "s", ad::Reuse::kTrue);
    (void)L::batch_normalization(x);  // reuses s/batch_normalization
  }
  BOOST_TEST(ad::global_variables(g).size() == 4u);
  {
    ad::VariableScope outer(g, "outer");
    ad::VariableScope inner(g, "inner");
    (void)L::batch_normalization(x, {.name = "bn"});
  }
  BOOST_TEST(ad::global_variables(g)[4].name() == "outer/inner/bn/gamma");
  BOOST_TEST(g.get_collection(ad::GraphKeys::GLOBAL_VARIABLES, "outer/").size() == 4u);
}

BOOST_AUTO_TEST_CASE(update_ops_are_added_in_order_only_when_training) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
  (void)L::batch_normalization(x, {.training = false});
  BOOST_TEST(g.get_collection(ad::GraphKeys::UPDATE_OPS).empty());
  (void)L::batch_normalization(x, {.training = ad::constant(g, ad::Array::scalar(false))});
  BOOST_TEST(g.get_collection(ad::GraphKeys::UPDATE_OPS).empty());
  L::BatchNormalization layer({.training = true, .name = "bn"});
  (void)layer(x);
  const auto updates = g.get_collection(ad::GraphKeys::UPDATE_OPS);
  BOOST_REQUIRE(updates.size() == 2u);
  // Each update assigns its variable (the Assign node's input 0 is the variable's handle).
  BOOST_TEST(g.node(updates[0].op().inputs[0].node).name == "bn/moving_mean");
  BOOST_TEST(g.node(updates[1].op().inputs[0].node).name == "bn/moving_variance");
  BOOST_TEST(updates[0].op().name.find("bn/AssignMovingAvg") == 0u);
  (void)L::batch_normalization(x, {.training = flag});
  BOOST_TEST(g.get_collection(ad::GraphKeys::UPDATE_OPS).size() == 4u);
  BOOST_TEST(layer.updates().size() == 2u);
}

BOOST_AUTO_TEST_CASE(trainable_false_drops_updates_and_warns) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  std::vector<std::string> warnings;
  const auto previous =
      ad::set_warning_handler([&](std::string_view m) { warnings.emplace_back(m); });
  L::BatchNormalization layer({.training = true, .trainable = false, .name = "frozen"});
  (void)layer(x);
  ad::set_warning_handler(previous);
  BOOST_TEST(g.get_collection(ad::GraphKeys::UPDATE_OPS).empty());
  BOOST_TEST(layer.updates().empty());
  BOOST_TEST(ad::trainable_variables(g).empty());
  BOOST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(warnings[0].find("'frozen'") != std::string::npos);
  BOOST_TEST(warnings[0].find("UPDATE_OPS") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(regularization_losses_are_collected) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto l2 = [](const ad::Tensor& w) { return ad::reduce_sum(ad::square(w)); };
  L::BatchNormalization layer(
      {.beta_regularizer = l2, .gamma_regularizer = l2, .trainable = false});
  (void)layer(x);
  BOOST_TEST(layer.losses().size() == 2u);
  BOOST_TEST(g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES).size() == 2u);
}

BOOST_AUTO_TEST_CASE(configuration_resolution_follows_tf) {
  ad::Graph g;
  auto nhwc = ad::placeholder(g, ad::DType::Float32, {-1, 5, 5, 8}, "nhwc");
  L::BatchNormalization a({.axis = 3, .epsilon = 1e-6});
  (void)a(nhwc, true);
  BOOST_TEST(a.config().tf_fused);
  BOOST_TEST(a.config().fused_gradient);
  BOOST_TEST(a.config().epsilon == 1.001e-5);
  auto nhwc64 = ad::placeholder(g, ad::DType::Float64, {-1, 5, 5, 8}, "nhwc64");
  L::BatchNormalization b({.epsilon = 1e-6});
  (void)b(nhwc64, true);
  BOOST_TEST(!b.config().tf_fused);
  BOOST_TEST(b.config().epsilon == 1e-6);
  L::BatchNormalization c({.axis = 2});
  (void)c(nhwc, true);
  BOOST_TEST(!c.config().tf_fused);
  BOOST_TEST(c.config().fused_gradient);
  L::BatchNormalization d({.axis = 3, .fused = false});
  (void)d(nhwc, true);
  BOOST_TEST(!d.config().tf_fused);
  BOOST_TEST(!d.config().fused_gradient);
  L::BatchNormalization e({.axis = 1, .renorm = true, .fused = true});
  (void)e(nhwc, true);
  BOOST_TEST(!e.config().tf_fused);
  BOOST_TEST(!e.config().fused_gradient);
}

BOOST_AUTO_TEST_CASE(construction_and_build_errors_name_layer_argument_and_shapes) {
  ad::Graph g;
  auto x4 = ad::placeholder(g, ad::DType::Float32, {2, 3, 4, 5}, "x4");
  auto s = ad::placeholder(g, ad::DType::Float32, {}, "s");
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(s, {.name = "r0"}), ad::ValueError,
                        (MessageHas{{"'r0'", "Input has undefined rank"}}));
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x4, {.axis = 4, .name = "ax"}), ad::ValueError,
                        (MessageHas{{"'ax'", "Invalid axis: 4", "[2, 3, 4, 5]"}}));
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x4, {.axis = -5, .name = "ax2"}),
                        ad::ValueError, (MessageHas{{"Invalid axis: -1"}}));
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x4, {.axis = {3, -1}, .name = "dup"}),
                        ad::ValueError, (MessageHas{{"'dup'", "Duplicate axis: [3, -1]"}}));
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x4, {.name = "v0", .virtual_batch_size = 0}),
                        ad::ValueError, (MessageHas{{"'v0'", "virtual_batch_size", "positive"}}));
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x4, {.axis = {0, 3}, .name = "v1", .virtual_batch_size = 1}),
      ad::ValueError, (MessageHas{{"'v1'", "axis cannot include 0"}}));
  auto adj = [](const ad::Tensor& shape) {
    (void)shape;
    return std::pair<ad::Tensor, ad::Tensor>{};
  };
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x4, {.name = "v2", .virtual_batch_size = 1, .adjustment = adj}),
      ad::ValueError, (MessageHas{{"'v2'", "adjustment cannot be specified"}}));
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x4, {.name = "v3", .virtual_batch_size = 3}), ad::ValueError,
      (MessageHas{{"'v3'", "batch of 2", "not divisible by virtual_batch_size 3"}}));
  auto unknown = ad::placeholder(g, ad::DType::Float32, {2, -1}, "unknown");
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(unknown, {.name = "u"}), ad::ValueError,
                        (MessageHas{{"'u'", "undefined `axis` dimension", "[2, ?]"}}));
  auto ints = ad::placeholder(g, ad::DType::Int64, {2, 3}, "ints");
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(ints, {.name = "i"}), ad::ValueError,
                        (MessageHas{{"'i'", "int64", "float32 or float64"}}));
  BOOST_CHECK_EXCEPTION(
      L::BatchNormalization({.renorm = true, .renorm_clipping = {{"rmaxx", 3.0}}}), ad::ValueError,
      (MessageHas{{"renorm_clipping", "'rmaxx'"}}));
  // Without renorm, renorm_clipping is ignored entirely, even with bad keys.
  BOOST_CHECK_NO_THROW(L::BatchNormalization({.renorm_clipping = {{"bogus", 1.0}}}));
}

BOOST_AUTO_TEST_CASE(later_calls_check_rank_and_channels) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 64, 8, 8}, "x");
  auto other = ad::placeholder(g, ad::DType::Float32, {-1, 32, 8, 8}, "other");
  auto flat = ad::placeholder(g, ad::DType::Float32, {-1, 64}, "flat");
  L::BatchNormalization layer({.axis = 1, .name = "bn1"});
  (void)layer(x);
  (void)layer(x);  // shares the variables
  BOOST_TEST(ad::global_variables(g).size() == 4u);
  BOOST_CHECK_EXCEPTION((void)layer(other), ad::ValueError,
                        (MessageHas{{"batch_normalization 'bn1'", "input has 32 channels on axis 1",
                                     "but the layer was built for 64"}}));
  BOOST_CHECK_EXCEPTION((void)layer(flat), ad::ValueError,
                        (MessageHas{{"'bn1'", "rank 2", "rank 4"}}));
}

BOOST_AUTO_TEST_CASE(check_update_ops_reports_forgotten_update_ops) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto y = L::batch_normalization(x, {.training = true});
  auto loss = ad::reduce_mean(ad::square(y));
  auto train = ad::group({ad::identity(ad::gradients(loss, {x})[0])}, "train");
  g.add_to_collection(ad::GraphKeys::TRAIN_OP, train);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.run({train}, {{x, ad::Array::full(ad::DType::Float32, {4, 3}, 1.0)}});
  const auto report = L::check_update_ops(s, g);
  BOOST_TEST(report.train_op_ran);
  BOOST_TEST(report.never_run.size() == 2u);
  BOOST_TEST(report.message.find("UPDATE_OPS never ran") != std::string::npos);
  auto fixed = ad::group({train, ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
  s.run({fixed}, {{x, ad::Array::full(ad::DType::Float32, {4, 3}, 1.0)}});
  BOOST_TEST(L::check_update_ops(s, g).never_run.empty());
  BOOST_TEST(L::check_update_ops(s, g).message.empty());
}

BOOST_AUTO_TEST_SUITE_END()
