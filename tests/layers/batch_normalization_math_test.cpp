// batch_normalization values: training and inference outputs, moving statistics over several
// steps (TF's fused and non-fused conventions), training as a tensor, renorm with each clipping
// key, virtual batches with strided groups, adjustment, and the layer's gradients. Expected values
// come from the plain-loop float64 reference in tests/support/bn_reference.h, following the spec.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "layers/batch_normalization.h"
#include "tests/support/bn_reference.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::channel_stats;
using ad::testing::channels;
using ad::testing::max_error;
using ad::testing::random_array;
using ad::testing::to_doubles;

namespace {

ad::Initializer constant_init(const ad::Array& value) {
  return [value](ad::Graph& g, const ad::Shape&, ad::DType dtype) {
    return ad::constant(g, value.astype(dtype));
  };
}

std::vector<double> moving(std::vector<double> old, const std::vector<double>& batch,
                           double momentum) {
  for (std::size_t c = 0; c < old.size(); ++c)
    old[c] = old[c] - (old[c] - batch[c]) * (1.0 - momentum);
  return old;
}

struct AxisCase {
  ad::Shape shape;
  L::AxisList axis;
  std::vector<int> kept;
  bool center = true;
  bool scale = true;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(batch_normalization_math_test)

BOOST_AUTO_TEST_CASE(training_and_inference_outputs_match_the_reference) {
  const std::vector<AxisCase> cases{
      {{8, 5}, -1, {1}},
      {{4, 3, 6}, 1, {1}},
      {{2, 3, 4, 5}, 1, {1}},
      {{2, 4, 5, 3}, -1, {3}},
      {{3, 4, 2, 5}, {1, 2}, {1, 2}},
      {{2, 2, 3, 2, 3}, 4, {4}, false, true},
      {{6, 4}, 1, {1}, true, false},
      {{6, 4}, 1, {1}, false, false},
      {{7}, 0, {0}},
  };
  std::uint64_t seed = 1;
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("shape " << c.shape) {
      ad::Graph g;
      const auto x_value = random_array(c.shape, seed++, -3.0, 5.0);
      ad::Shape param;
      for (int a : c.kept) param.push_back(c.shape[a]);
      if (c.kept.size() > 1) {
        param = c.shape;
        for (int d = 0; d < c.shape.rank(); ++d) {
          if (std::find(c.kept.begin(), c.kept.end(), d) == c.kept.end()) param[d] = 1;
        }
      }
      const auto gamma = random_array(param, seed++, 0.5, 2.0);
      const auto beta = random_array(param, seed++, -1.0, 1.0);
      auto x = ad::placeholder(g, ad::DType::Float64, c.shape, "x");
      L::BatchNormalization layer({.axis = c.axis,
                                   .center = c.center,
                                   .scale = c.scale,
                                   .beta_initializer = constant_init(beta),
                                   .gamma_initializer = constant_init(gamma)});
      auto y_train = layer(x, true);
      auto y_infer = layer(x, false);
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      const auto mm = random_array(param, seed++, -1.0, 1.0);
      const auto mv = random_array(param, seed++, 0.5, 3.0);
      s.set_value(layer.moving_mean(), mm);
      s.set_value(layer.moving_variance(), mv);
      const auto out = s.run({y_train, y_infer}, {{x, x_value}});
      const auto xs = to_doubles(x_value);
      const auto ch = channels(c.shape, c.kept);
      const auto stats = channel_stats(xs, ch);
      const auto g_ref = c.scale ? to_doubles(gamma) : std::vector<double>{};
      const auto b_ref = c.center ? to_doubles(beta) : std::vector<double>{};
      BOOST_TEST(
          max_error(to_doubles(out[0]), ad::testing::normalize(xs, ch, stats.mean, stats.variance,
                                                               g_ref, b_ref, 1e-3)) < 1e-12);
      BOOST_TEST(max_error(to_doubles(out[1]),
                           ad::testing::normalize(xs, ch, to_doubles(mm), to_doubles(mv), g_ref,
                                                  b_ref, 1e-3)) < 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(moving_statistics_follow_tf_over_several_steps) {
  // float64 takes TF's non-fused path (biased variance, epsilon as given); float32 NHWC takes the
  // fused convention (unbiased variance). Momentum 0.9, three different batches.
  for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    BOOST_TEST_CONTEXT("dtype " << dtype) {
      ad::Graph g;
      const ad::Shape shape{4, 3, 2, 5};
      auto x = ad::placeholder(g, dtype, shape, "x");
      L::BatchNormalization layer({.axis = 3, .momentum = 0.9});
      auto y = layer(x, true);
      auto step =
          ad::group({ad::identity(y), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      std::vector<double> mm(5, 0.0);
      std::vector<double> mv(5, 1.0);
      const auto ch = channels(shape, {3});
      const double n = static_cast<double>(ch.per_channel);
      for (int k = 0; k < 3; ++k) {
        const auto value =
            random_array(shape, 40 + static_cast<std::uint64_t>(k), -2.0 + k, 3.0 + 2 * k)
                .astype(dtype);
        s.run({step}, {{x, value}});
        const auto stats = channel_stats(to_doubles(value), ch);
        auto variance = stats.variance;
        if (dtype == ad::DType::Float32) {
          for (auto& v : variance) v *= n / (n - 1);  // TF's fused kernel: unbiased
        }
        mm = moving(mm, stats.mean, 0.9);
        mv = moving(mv, variance, 0.9);
      }
      const double tol = dtype == ad::DType::Float64 ? 1e-12 : 1e-5;
      BOOST_TEST(max_error(to_doubles(s.value(layer.moving_mean())), mm) < tol);
      BOOST_TEST(max_error(to_doubles(s.value(layer.moving_variance())), mv) < tol);
      BOOST_TEST(layer.config().tf_fused == (dtype == ad::DType::Float32));
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_and_non_fused_moving_variance_differ_by_the_bessel_factor) {
  // TF's own test: the same model gives different moving variances for float32 NHWC (fused) and
  // for a configuration that is not fused (here fused=false).
  ad::Graph g;
  const ad::Shape shape{2, 2, 2, 3};
  auto x = ad::placeholder(g, ad::DType::Float32, shape, "x");
  L::BatchNormalization fused({.axis = 3, .momentum = 0.0});
  L::BatchNormalization plain({.axis = 3, .momentum = 0.0, .fused = false});
  auto step = ad::group({ad::identity(fused(x, true)), ad::identity(plain(x, true)),
                         ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto value = random_array(shape, 3, 0.0, 4.0).astype(ad::DType::Float32);
  s.run({step}, {{x, value}});
  const auto a = to_doubles(s.value(fused.moving_variance()));
  const auto b = to_doubles(s.value(plain.moving_variance()));
  for (std::size_t c = 0; c < 3; ++c)
    BOOST_TEST(a[c] == b[c] * 8.0 / 7.0, boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(training_tensor_matches_static_bool_and_false_changes_nothing) {
  for (const bool renorm : {false, true}) {
    BOOST_TEST_CONTEXT("renorm " << renorm) {
      ad::Graph g;
      const ad::Shape shape{6, 4};
      auto x = ad::placeholder(g, ad::DType::Float64, shape, "x");
      auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
      L::BatchNormalization dynamic({.momentum = 0.8, .name = "dyn", .renorm = renorm});
      L::BatchNormalization fixed({.momentum = 0.8, .name = "fix", .renorm = renorm});
      auto y_dynamic = dynamic(x, flag);
      auto y_train = fixed(x, true);
      auto y_infer = fixed(x, false);
      auto dynamic_updates = ad::group(dynamic.updates());
      auto fixed_updates = ad::group(fixed.updates());
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      const auto value = random_array(shape, 11, -1.0, 3.0);
      // false at run time: inference output, and running the update ops changes nothing.
      const auto before = s.value(dynamic.moving_variance()).clone();
      const auto off = s.run({y_dynamic, y_infer, dynamic_updates},
                             {{x, value}, {flag, ad::Array::scalar(false)}});
      BOOST_TEST(off[0].bitwise_equal(off[1]));
      BOOST_TEST(s.value(dynamic.moving_variance()).bitwise_equal(before));
      BOOST_TEST(s.value(dynamic.moving_mean()).bitwise_equal(ad::Array(ad::DType::Float64, {4})));
      // true: the same values as the static training graph, and the same updates.
      const auto on = s.run({y_dynamic, y_train, dynamic_updates, fixed_updates},
                            {{x, value}, {flag, ad::Array::scalar(true)}});
      BOOST_TEST(max_error(to_doubles(on[0]), to_doubles(on[1])) < 1e-14);
      const auto dv = dynamic.variables();
      const auto fv = fixed.variables();
      for (std::size_t i = 0; i < dv.size(); ++i) {
        BOOST_TEST(max_error(to_doubles(s.value(dv[i])), to_doubles(s.value(fv[i]))) < 1e-14,
                   dv[i].name());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(renorm_matches_the_reference_over_steps_for_each_clipping_key) {
  struct Clip {
    std::map<std::string, L::ScalarArg> keys;
    double rmin = -INFINITY, rmax = INFINITY, dmax = INFINITY;
  };
  const std::vector<Clip> clips{{{}},
                                {{{"rmin", 0.9}}, 0.9},
                                {{{"rmax", 1.1}}, -INFINITY, 1.1},
                                {{{"dmax", 0.2}}, -INFINITY, INFINITY, 0.2},
                                {{{"rmin", 0.8}, {"rmax", 1.2}, {"dmax", 0.5}}, 0.8, 1.2, 0.5}};
  const double eps = 1e-3;
  const double momentum = 0.9;
  const double renorm_momentum = 0.7;
  for (const auto& clip : clips) {
    BOOST_TEST_CONTEXT("clipping keys " << clip.keys.size() << " rmin " << clip.rmin) {
      ad::Graph g;
      const ad::Shape shape{5, 3};
      auto x = ad::placeholder(g, ad::DType::Float64, shape, "x");
      const auto gamma = random_array({3}, 70, 0.5, 1.5);
      const auto beta = random_array({3}, 71, -0.5, 0.5);
      L::BatchNormalization layer({.momentum = momentum,
                                   .epsilon = eps,
                                   .beta_initializer = constant_init(beta),
                                   .gamma_initializer = constant_init(gamma),
                                   .renorm = true,
                                   .renorm_clipping = clip.keys,
                                   .renorm_momentum = renorm_momentum});
      auto y = layer(x, true);
      auto y_infer = layer(x, false);
      auto updates = ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS));
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      std::vector<double> mm(3, 0.0), mv(3, 1.0), ms(3, 1.0), rm(3, 0.0), rs(3, 1.0);
      const auto ch = channels(shape, {1});
      const auto gs = to_doubles(gamma);
      const auto bs = to_doubles(beta);
      for (int k = 0; k < 4; ++k) {
        const auto value =
            random_array(shape, 80 + static_cast<std::uint64_t>(k), -1.0 + k, 2.0 + 3 * k);
        const auto out = s.run({y, updates}, {{x, value}});
        const auto xs = to_doubles(value);
        const auto st = channel_stats(xs, ch);
        std::vector<double> expected(xs.size());
        std::vector<double> stddev(3);
        for (std::size_t c = 0; c < 3; ++c) stddev[c] = std::sqrt(st.variance[c] + eps);
        for (std::size_t i = 0; i < xs.size(); ++i) {
          const auto c = static_cast<std::size_t>(ch.of[i]);
          const double rho = std::max(rs[c], std::sqrt(eps));
          const double r = std::min(std::max(stddev[c] / rho, clip.rmin), clip.rmax);
          const double d = std::min(std::max((st.mean[c] - rm[c]) / rho, -clip.dmax), clip.dmax);
          expected[i] = ((xs[i] - st.mean[c]) / stddev[c] * r + d) * gs[c] + bs[c];
        }
        BOOST_TEST(max_error(to_doubles(out[0]), expected) < 1e-12, "step " << k);
        rm = moving(rm, st.mean, renorm_momentum);
        rs = moving(rs, stddev, renorm_momentum);
        mm = moving(mm, st.mean, momentum);
        ms = moving(ms, stddev, momentum);
        for (std::size_t c = 0; c < 3; ++c) mv[c] = std::max(ms[c] * ms[c] - eps, 0.0);
      }
      BOOST_TEST(max_error(to_doubles(s.value(layer.renorm_mean())), rm) < 1e-12);
      BOOST_TEST(max_error(to_doubles(s.value(layer.renorm_stddev())), rs) < 1e-12);
      BOOST_TEST(max_error(to_doubles(s.value(layer.moving_mean())), mm) < 1e-12);
      BOOST_TEST(max_error(to_doubles(s.value(layer.moving_stddev())), ms) < 1e-12);
      BOOST_TEST(max_error(to_doubles(s.value(layer.moving_variance())), mv) < 1e-12);
      // Inference uses moving_mean and moving_variance.
      const auto value = random_array(shape, 99);
      const auto inf = s.eval(y_infer, {{x, value}});
      BOOST_TEST(max_error(to_doubles(inf), ad::testing::normalize(to_doubles(value), ch, mm, mv,
                                                                   gs, bs, eps)) < 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(virtual_batches_normalize_strided_groups_and_average_their_statistics) {
  const ad::Shape shape{6, 2};
  const std::int64_t v = 2;  // three virtual batches of two rows: {0, 3}, {1, 4}, {2, 5}
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 2}, "x");
  L::BatchNormalization layer({.momentum = 0.5, .virtual_batch_size = v});
  auto y = layer(x, true);
  auto updates = ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto value = random_array(shape, 123, -2.0, 2.0);
  const auto out = s.run({y, updates}, {{x, value}});
  const auto xs = to_doubles(value);
  std::vector<double> expected(xs.size());
  std::vector<double> mean_avg(2, 0.0), var_avg(2, 0.0);
  for (int group = 0; group < 3; ++group) {
    for (int c = 0; c < 2; ++c) {
      const double a = xs[static_cast<std::size_t>(group * 2 + c)];
      const double b = xs[static_cast<std::size_t>((group + 3) * 2 + c)];
      const double m = (a + b) / 2;
      const double var = ((a - m) * (a - m) + (b - m) * (b - m)) / 2;
      expected[static_cast<std::size_t>(group * 2 + c)] = (a - m) / std::sqrt(var + 1e-3);
      expected[static_cast<std::size_t>((group + 3) * 2 + c)] = (b - m) / std::sqrt(var + 1e-3);
      mean_avg[static_cast<std::size_t>(c)] += m / 3;
      var_avg[static_cast<std::size_t>(c)] += var / 3;
    }
  }
  BOOST_TEST(max_error(to_doubles(out[0]), expected) < 1e-12);
  BOOST_TEST(out[0].shape() == shape);
  BOOST_TEST(max_error(to_doubles(s.value(layer.moving_mean())), moving({0, 0}, mean_avg, 0.5)) <
             1e-12);
  BOOST_TEST(max_error(to_doubles(s.value(layer.moving_variance())), moving({1, 1}, var_avg, 0.5)) <
             1e-12);
  // A fed batch that the virtual batch size does not divide fails at run time, naming the layer.
  BOOST_CHECK_EXCEPTION(
      s.eval(y, {{x, random_array({5, 2}, 1)}}), ad::InvalidArgumentError,
      (ad::testing::MessageHas{{"batch_normalization 'batch_normalization'", "batch of 5",
                                "virtual_batch_size 2", "[5, 2]"}}));
}

BOOST_AUTO_TEST_CASE(virtual_batch_equal_to_the_batch_is_plain_batch_norm) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {4, 3}, "x");
  auto a = L::batch_normalization(x, {.training = true, .name = "ghost", .virtual_batch_size = 4});
  auto b = L::batch_normalization(x, {.training = true, .name = "plain"});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto out = s.run({a, b}, {{x, random_array({4, 3}, 5)}});
  BOOST_TEST(max_error(to_doubles(out[0]), to_doubles(out[1])) < 1e-14);
}

BOOST_AUTO_TEST_CASE(adjustment_applies_in_training_only) {
  ad::Graph g;
  const ad::Shape shape{5, 3};
  auto x = ad::placeholder(g, ad::DType::Float64, shape, "x");
  auto flag = ad::placeholder(g, ad::DType::Bool, {}, "training");
  const auto a_scale = random_array({3}, 7, 0.5, 2.0);
  const auto a_bias = random_array({3}, 8, -1.0, 1.0);
  const auto gamma = random_array({3}, 9, 0.5, 2.0);
  const auto beta = random_array({3}, 10, -1.0, 1.0);
  int calls = 0;
  L::BatchNormalization layer(
      {.beta_initializer = constant_init(beta),
       .gamma_initializer = constant_init(gamma),
       .adjustment = [&](const ad::Tensor& dynamic_shape) {
         ++calls;
         BOOST_TEST(dynamic_shape.dtype() == ad::DType::Int64);
         return std::pair{ad::constant(g, a_scale), ad::constant(g, a_bias)};
       }});
  auto y = layer(x, flag);
  (void)layer(x, false);  // a static false never calls the adjustment
  BOOST_TEST(calls == 1);
  BOOST_TEST(!layer.config().fused_gradient);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto value = random_array(shape, 12, -2.0, 2.0);
  const auto xs = to_doubles(value);
  const auto ch = channels(shape, {1});
  const auto st = channel_stats(xs, ch);
  const auto as = to_doubles(a_scale), ab = to_doubles(a_bias), gs = to_doubles(gamma),
             bs = to_doubles(beta);
  std::vector<double> expected(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto c = static_cast<std::size_t>(ch.of[i]);
    expected[i] =
        ((xs[i] - st.mean[c]) / std::sqrt(st.variance[c] + 1e-3) * as[c] + ab[c]) * gs[c] + bs[c];
  }
  BOOST_TEST(max_error(to_doubles(s.eval(y, {{x, value}, {flag, ad::Array::scalar(true)}})),
                       expected) < 1e-12);
  const auto inference = ad::testing::normalize(xs, ch, {0, 0, 0}, {1, 1, 1}, gs, bs, 1e-3);
  BOOST_TEST(max_error(to_doubles(s.eval(y, {{x, value}, {flag, ad::Array::scalar(false)}})),
                       inference) < 1e-12);
}

BOOST_AUTO_TEST_CASE(layer_gradients_agree_between_fused_and_composed_paths) {
  for (const bool training : {true, false}) {
    for (const int axis : {1, -1}) {
      BOOST_TEST_CONTEXT("training " << training << " axis " << axis) {
        ad::Graph g;
        const ad::Shape shape{3, 4, 2, 5};
        auto x = ad::placeholder(g, ad::DType::Float64, shape, "x");
        const ad::Shape param{shape[axis < 0 ? 3 : axis]};
        const auto gamma = random_array(param, 21, 0.5, 1.5);
        const auto beta = random_array(param, 22, -1.0, 1.0);
        L::BatchNormalization fused({.axis = axis,
                                     .beta_initializer = constant_init(beta),
                                     .gamma_initializer = constant_init(gamma)});
        L::BatchNormalization plain({.axis = axis,
                                     .beta_initializer = constant_init(beta),
                                     .gamma_initializer = constant_init(gamma),
                                     .fused = false});
        auto dy = ad::constant(g, random_array(shape, 23));
        auto yf = fused(x, training);
        auto yp = plain(x, training);
        const auto gf = ad::gradients(
            {yf}, {x, fused.gamma(), fused.beta(), fused.moving_mean(), fused.moving_variance()},
            {dy});
        const auto gp = ad::gradients(
            {yp}, {x, plain.gamma(), plain.beta(), plain.moving_mean(), plain.moving_variance()},
            {dy});
        ad::Session s(g);
        s.run({ad::global_variables_initializer(g)});
        for (const auto* layer : {&fused, &plain}) {
          s.set_value(layer->moving_mean(), random_array(param, 24, -0.5, 0.5));
          s.set_value(layer->moving_variance(), random_array(param, 25, 0.5, 2.0));
        }
        const auto value = random_array(shape, 26, -2.0, 2.0);
        for (std::size_t i = 0; i < gf.size(); ++i) {
          BOOST_TEST(static_cast<bool>(gf[i]) == static_cast<bool>(gp[i]));
          if (!gf[i]) continue;
          const auto out = s.run({gf[i], gp[i]}, {{x, value}});
          BOOST_TEST(max_error(to_doubles(out[0]), to_doubles(out[1])) < 1e-11, "gradient " << i);
        }
        // In training the moving statistics get no gradient; in inference they do.
        BOOST_TEST(static_cast<bool>(gf[3]) == !training);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
