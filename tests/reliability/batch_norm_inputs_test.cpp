// Hostile arguments for batch normalization: an empty training batch must not turn the moving
// statistics into NaN (it is an InvalidArgumentError naming the layer, and the statistics keep
// their values); momentum and renorm clipping tensors of a dtype TF rejects (int64, bool), a
// momentum tensor of another graph, a wrongly shaped adjustment and an unknown renorm_clipping key
// are ValueErrors naming the layer and the argument, not an internal op; check_update_ops refuses
// a session of another graph. After each failure the session keeps working.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace L = ad::layers;
namespace utf = boost::unit_test;

namespace {

ad::Array iota(const ad::Shape& shape) {
  ad::Array a = ad::Array::uninitialized(ad::DType::Float32, shape);
  auto v = a.mutable_data<float>();
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 2.5f;
  return a;
}

// One layer configuration: what an empty batch looks like for it.
struct EmptyBatchCase {
  std::string name;
  ad::Shape input_shape;     // the placeholder's static shape
  ad::Shape empty_batch;     // a fed value with no elements to average over
  ad::Shape ordinary_batch;  // a fed value that trains normally
  L::BatchNormalizationOptions options;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(batch_norm_inputs_test)

BOOST_AUTO_TEST_CASE(an_empty_training_batch_is_an_error_and_leaves_the_statistics_unchanged) {
  const std::vector<EmptyBatchCase> cases{
      {"dense", {-1, 4}, {0, 4}, {3, 4}, {.training = true, .name = "bn_dense"}},
      {"nchw_fused",
       {-1, 3, -1, -1},
       {0, 3, 2, 2},
       {2, 3, 2, 2},
       {.axis = 1, .training = true, .name = "bn_nchw"}},
      {"nchw_no_pixels",
       {-1, 3, -1, -1},
       {2, 3, 0, 5},
       {2, 3, 2, 2},
       {.axis = 1, .training = true, .name = "bn_pixels"}},
      {"unfused",
       {-1, 4},
       {0, 4},
       {3, 4},
       {.training = true, .name = "bn_unfused", .fused = false}},
      {"renorm", {-1, 4}, {0, 4}, {3, 4}, {.training = true, .name = "bn_renorm", .renorm = true}},
      {"virtual_batches",
       {-1, 4},
       {0, 4},
       {4, 4},
       {.training = true, .name = "bn_virtual", .virtual_batch_size = 2}},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ad::Graph g;
      auto x = ad::placeholder(g, ad::DType::Float32, c.input_shape, "x");
      L::BatchNormalization layer(c.options);
      auto y = layer(x);
      auto train = ad::group(layer.updates());
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      const auto stats = layer.variables();
      std::vector<ad::Array> before;
      for (const auto& v : stats) before.push_back(s.value(v).clone());
      const ad::Array mean_before = s.value(layer.moving_mean()).clone();
      BOOST_CHECK_EXCEPTION(
          (void)s.run({y, train}, {{x, ad::Array(ad::DType::Float32, c.empty_batch)}}),
          ad::InvalidArgumentError, (MessageHas{{"batch_normalization '" + c.options.name + "'"}}));
      for (std::size_t i = 0; i < stats.size(); ++i) {
        BOOST_TEST(s.value(stats[i]).bitwise_equal(before[i]), stats[i].name() << " changed");
      }
      // The session survives: an ordinary batch trains and moves the statistics.
      const auto out = s.run({y, train}, {{x, iota(c.ordinary_batch)}});
      BOOST_TEST(out[0].shape() == c.ordinary_batch);
      BOOST_TEST(!s.value(layer.moving_mean()).bitwise_equal(mean_before));
    }
  }
}

BOOST_AUTO_TEST_CASE(an_empty_batch_in_inference_is_an_empty_result) {
  // Nothing is averaged in inference: an empty batch gives an empty output, as in TF.
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  auto y = L::batch_normalization(x, {.training = false, .name = "bn"});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.eval(y, {{x, ad::Array(ad::DType::Float32, {0, 4})}}).shape() == ad::Shape({0, 4}));
}

BOOST_AUTO_TEST_CASE(momentum_and_rmax_tensors_of_a_dtype_tf_rejects_are_value_errors) {
  for (const auto dtype : {ad::DType::Int64, ad::DType::Bool}) {
    BOOST_TEST_CONTEXT(dtype) {
      ad::Graph g;
      auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
      auto wrong = ad::placeholder(g, dtype, {}, "wrong");
      BOOST_CHECK_EXCEPTION(
          (void)L::batch_normalization(x, {.momentum = wrong, .training = true, .name = "bn_m"}),
          ad::ValueError, (MessageHas{{"batch_normalization 'bn_m'", "momentum", "wrong"}}));
      BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x, {.training = true,
                                                             .name = "bn_r",
                                                             .renorm = true,
                                                             .renorm_clipping = {{"rmax", wrong}}}),
                            ad::ValueError,
                            (MessageHas{{"batch_normalization 'bn_r'", "rmax", "wrong"}}));
    }
  }
  // A floating momentum tensor of either width is accepted and used.
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  auto momentum = ad::placeholder(g, ad::DType::Float64, {}, "momentum");
  L::BatchNormalization layer({.momentum = momentum, .training = true, .name = "bn"});
  auto y = layer(x);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  (void)s.run({y, ad::group(layer.updates())},
              {{x, iota({3, 4})}, {momentum, ad::Array::scalar(0.0)}});
  // momentum 0: the moving mean becomes the batch mean; column 0 of iota holds -2.5, 1.5, -1.5.
  BOOST_TEST(static_cast<double>(s.value(layer.moving_mean()).data<float>()[0]) == -2.5 / 3,
             boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(a_momentum_tensor_of_another_graph_names_the_layer_and_argument) {
  ad::Graph g;
  ad::Graph other;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  auto foreign = ad::placeholder(other, ad::DType::Float32, {}, "foreign_momentum");
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x, {.momentum = foreign, .training = true, .name = "bn"}),
      ad::ValueError, (MessageHas{{"batch_normalization 'bn'", "momentum", "another graph"}}));
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(x, {.training = true,
                                                         .name = "bn_clip",
                                                         .renorm = true,
                                                         .renorm_clipping = {{"dmax", foreign}}}),
                        ad::ValueError,
                        (MessageHas{{"batch_normalization 'bn_clip'", "dmax", "another graph"}}));
}

BOOST_AUTO_TEST_CASE(a_wrongly_shaped_adjustment_names_the_layer_and_argument) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  const L::Adjustment five_channels = [&](const ad::Tensor&) {
    return std::pair{ad::fill(g, {5}, 1.0, ad::DType::Float32),
                     ad::fill(g, {5}, 0.0, ad::DType::Float32)};
  };
  BOOST_CHECK_EXCEPTION((void)L::batch_normalization(
                            x, {.training = true, .name = "bn_adj", .adjustment = five_channels}),
                        ad::ValueError,
                        (MessageHas{{"batch_normalization 'bn_adj'", "adjustment", "[5]", "[4]"}}));
}

BOOST_AUTO_TEST_CASE(an_unknown_renorm_clipping_key_names_the_layer) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  BOOST_CHECK_EXCEPTION(
      (void)L::batch_normalization(x, {.training = true,
                                       .name = "bn_keys",
                                       .renorm = true,
                                       .renorm_clipping = {{"r_max", 3.0}}}),
      ad::ValueError,
      (MessageHas{{"batch_normalization 'bn_keys'", "renorm_clipping", "'r_max'", "rmax"}}));
}

BOOST_AUTO_TEST_CASE(check_update_ops_refuses_a_session_of_another_graph) {
  ad::Graph g;
  ad::Graph other;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "x");
  (void)L::batch_normalization(x, {.training = true, .name = "bn"});
  (void)ad::placeholder(other, ad::DType::Float32, {}, "p");
  ad::Session session_of_other(other);
  BOOST_CHECK_EXCEPTION((void)L::check_update_ops(session_of_other, g), ad::ValueError,
                        (MessageHas{{"check_update_ops", "another graph"}}));
  ad::Session s(g);
  BOOST_CHECK_NO_THROW((void)L::check_update_ops(s, g));
}

BOOST_AUTO_TEST_SUITE_END()
