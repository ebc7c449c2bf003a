// fused_batch_norm and fused_batch_norm_grad: the hand-written gradient agrees with differentiating
// the composition, with a plain-loop reference, and with float64 finite differences, in training
// and inference, first and second order, for several ranks and axis sets.
#include "autodiff/ops/fused_batch_norm.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/support/bn_reference.h"
#include "tests/support/gradient_check.h"

using ad::testing::random_array;

namespace {

struct Config {
  ad::Shape shape;
  std::vector<int> kept;
  bool scale;
  bool offset;
};

std::vector<int> reduction_axes(const Config& c) {
  std::vector<int> axes;
  for (int d = 0; d < c.shape.rank(); ++d) {
    if (std::find(c.kept.begin(), c.kept.end(), d) == c.kept.end()) axes.push_back(d);
  }
  return axes;
}

ad::Shape stat_shape(const Config& c) {
  ad::Shape s = c.shape;
  for (int a : reduction_axes(c)) s[a] = 1;
  return s;
}

const std::vector<Config>& configs() {
  static const std::vector<Config> all{
      {{6, 4}, {1}, true, true},
      {{3, 4, 5}, {1}, true, true},
      {{2, 3, 4, 5}, {1}, true, true},
      {{2, 4, 5, 3}, {3}, true, false},
      {{2, 3, 4, 5}, {1, 2}, false, true},
      {{2, 3, 2, 2, 3}, {4}, false, false},
      {{2, 3, 2, 4}, {1, 3}, true, true},
      {{5, 3}, {1}, false, true},
      {{7}, {0}, true, true},
  };
  return all;
}

// Inputs: x, [scale], [offset], and in inference [mean, variance].
std::vector<ad::Array> values_for(const Config& c, bool training, std::uint64_t seed) {
  std::vector<ad::Array> v{random_array(c.shape, seed, -2.0, 2.0)};
  if (c.scale) v.push_back(random_array(stat_shape(c), seed + 1, 0.5, 1.5));
  if (c.offset) v.push_back(random_array(stat_shape(c), seed + 2, -1.0, 1.0));
  if (!training) {
    v.push_back(random_array(stat_shape(c), seed + 3, -0.5, 0.5));
    v.push_back(random_array(stat_shape(c), seed + 4, 0.5, 2.0));
  }
  return v;
}

constexpr double kEpsilon = 1e-3;

// A float64 placeholder per value ("in0", "in1", ...), each fed its value.
std::vector<ad::Tensor> placeholders_for(ad::Graph& g, const std::vector<ad::Array>& values,
                                         ad::FeedDict& feeds) {
  std::vector<ad::Tensor> in;
  for (std::size_t i = 0; i < values.size(); ++i) {
    in.push_back(
        ad::placeholder(g, ad::DType::Float64, values[i].shape(), "in" + std::to_string(i)));
    feeds.emplace_back(in.back(), values[i]);
  }
  return in;
}

ad::Tensor build(const Config& c, bool training, bool fused, const std::vector<ad::Tensor>& in) {
  std::size_t k = 1;
  const ad::Tensor scale = c.scale ? in[k++] : ad::Tensor();
  const ad::Tensor offset = c.offset ? in[k++] : ad::Tensor();
  const ad::Tensor mean = training ? ad::Tensor() : in[k++];
  const ad::Tensor variance = training ? ad::Tensor() : in[k++];
  const auto axes = reduction_axes(c);
  if (fused)
    return ad::nn::fused_batch_norm(in[0], scale, offset, mean, variance, kEpsilon, axes, training)
        .y;
  if (training) {
    const auto [m, v] = ad::nn::exact_moments(in[0], axes);
    return ad::nn::batch_normalization(in[0], m, v, offset, scale, kEpsilon);
  }
  return ad::nn::batch_normalization(in[0], mean, variance, offset, scale, kEpsilon);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_batch_norm_test)

BOOST_AUTO_TEST_CASE(fused_gradient_matches_finite_differences_first_and_second_order) {
  std::uint64_t seed = 10;
  for (const auto& c : configs()) {
    for (const bool training : {true, false}) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " kept " << c.kept.size() << " training "
                                  << training) {
        ad::testing::check_gradient(
            [&](const std::vector<ad::Tensor>& in) { return build(c, training, true, in); },
            values_for(c, training, seed += 10), 1e-6, true);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_and_composed_gradients_agree_to_rounding) {
  std::uint64_t seed = 500;
  for (const auto& c : configs()) {
    for (const bool training : {true, false}) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " training " << training) {
        const auto values = values_for(c, training, seed += 10);
        ad::Graph g;
        ad::FeedDict feeds;
        const auto in = placeholders_for(g, values, feeds);
        const auto dy = ad::placeholder(g, ad::DType::Float64, c.shape, "dy");
        feeds.emplace_back(dy, random_array(c.shape, seed + 7));
        const auto y_fused = build(c, training, true, in);
        const auto y_comp = build(c, training, false, in);
        std::vector<ad::GradTarget> targets(in.begin(), in.end());
        const auto g_fused = ad::gradients({y_fused}, targets, {dy});
        const auto g_comp = ad::gradients({y_comp}, targets, {dy});
        // Second order: d/d(inputs) of sum(dx * v).
        const auto v = ad::placeholder(g, ad::DType::Float64, c.shape, "v");
        feeds.emplace_back(v, random_array(c.shape, seed + 8));
        const auto h_fused = ad::gradients({g_fused[0] * v}, targets);
        const auto h_comp = ad::gradients({g_comp[0] * v}, targets);
        ad::Session s(g);
        std::vector<ad::Tensor> fetch{y_fused, y_comp};
        for (std::size_t i = 0; i < in.size(); ++i) {
          fetch.insert(fetch.end(), {g_fused[i], g_comp[i]});
          if (h_fused[i] && h_comp[i]) fetch.insert(fetch.end(), {h_fused[i], h_comp[i]});
        }
        const auto out = s.run(fetch, feeds);
        for (std::size_t k = 0; k < out.size(); k += 2) {
          BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[k]),
                                            ad::testing::to_doubles(out[k + 1])) < 1e-10,
                     "fetch " << fetch[k].name() << " vs " << fetch[k + 1].name());
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(second_order_agrees_when_the_upstream_gradient_depends_on_x) {
  // L = sum(y^2 tanh(x)): the gradient arriving at y depends on x itself, so differentiating the
  // fused gradient must not follow the path from dy back to x twice.
  std::uint64_t seed = 700;
  for (const auto& c : configs()) {
    for (const bool training : {true, false}) {
      BOOST_TEST_CONTEXT("shape " << c.shape << " training " << training) {
        ad::Graph g;
        ad::FeedDict feeds;
        const auto in = placeholders_for(g, values_for(c, training, seed += 10), feeds);
        const std::vector<ad::GradTarget> targets(in.begin(), in.end());
        std::vector<std::vector<ad::Tensor>> second;
        for (const bool fused : {true, false}) {
          const auto y = build(c, training, fused, in);
          const auto first = ad::gradients(ad::reduce_sum(y * y * ad::tanh(in[0])), targets);
          second.push_back(ad::gradients(ad::reduce_sum(first[0] * ad::tanh(in[0])), targets));
        }
        ad::Session s(g);
        for (std::size_t i = 0; i < in.size(); ++i) {
          const auto out = s.run({second[0][i], second[1][i]}, feeds);
          BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[0]),
                                            ad::testing::to_doubles(out[1])) < 1e-10,
                     "input " << i);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(training_gradients_match_the_closed_form_reference) {
  for (const auto& c : configs()) {
    const auto values = values_for(c, true, 900);
    ad::Graph g;
    ad::FeedDict feeds;
    const auto in = placeholders_for(g, values, feeds);
    const auto dy_value = random_array(c.shape, 901);
    const auto dy = ad::constant(g, dy_value);
    const auto y = build(c, true, true, in);
    std::vector<ad::GradTarget> targets(in.begin(), in.end());
    const auto grads = ad::gradients({y}, targets, {dy});
    ad::Session s(g);
    std::vector<ad::Tensor> fetch{y};
    for (const auto& gr : grads) fetch.push_back(gr);
    const auto out = s.run(fetch, feeds);
    const auto x = ad::testing::to_doubles(values[0]);
    const auto ch = ad::testing::channels(c.shape, c.kept);
    const auto gamma = c.scale ? ad::testing::to_doubles(values[1]) : std::vector<double>{};
    const auto beta =
        c.offset ? ad::testing::to_doubles(values[c.scale ? 2 : 1]) : std::vector<double>{};
    const auto stats = ad::testing::channel_stats(x, ch);
    const auto y_ref =
        ad::testing::normalize(x, ch, stats.mean, stats.variance, gamma, beta, kEpsilon);
    const auto ref =
        ad::testing::training_grads(x, ad::testing::to_doubles(dy_value), ch, gamma, kEpsilon);
    BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[0]), y_ref) < 1e-12);
    BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[1]), ref.dx) < 1e-12);
    std::size_t k = 2;
    if (c.scale)
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[k++]), ref.dgamma) < 1e-12);
    if (c.offset)
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[k++]), ref.dbeta) < 1e-12);
  }
}

BOOST_AUTO_TEST_CASE(float32_gradient_is_close_to_float64_and_thread_count_independent) {
  const ad::Shape shape{8, 16, 6, 6};
  const auto x64 = random_array(shape, 77, -3.0, 3.0);
  const auto dy64 = random_array(shape, 78);
  std::vector<ad::Array> results;
  for (const ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    ad::Graph g;
    const auto x = ad::placeholder(g, dtype, shape, "x");
    const auto dy = ad::placeholder(g, dtype, shape, "dy");
    const auto y = ad::nn::fused_batch_norm(x, {}, {}, {}, {}, kEpsilon, {0, 2, 3}, true).y;
    const auto dx = ad::gradients({y}, {x}, {dy})[0];
    ad::Session s(g);
    results.push_back(s.eval(dx, {{x, x64.astype(dtype)}, {dy, dy64.astype(dtype)}}));
  }
  BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(results[1]),
                                    ad::testing::to_doubles(results[0])) < 1e-5);
}

BOOST_AUTO_TEST_CASE(channel_moments_match_the_reference_in_every_layout) {
  // NCHW-like, [rows, C], a contiguous kept block, non-contiguous kept axes, all kept.
  const std::vector<Config> layouts{{{3, 4, 50}, {1}, false, false},
                                    {{300, 7}, {1}, false, false},
                                    {{2, 3, 4, 5}, {1, 2}, false, false},
                                    {{2, 3, 2, 4}, {1, 3}, false, false},
                                    {{5, 3}, {0, 1}, false, false},
                                    // runs of >= 256 elements, reduced in memory-order segments
                                    {{2, 3, 300}, {1}, false, false},
                                    {{2, 3, 40000}, {1}, false, false},
                                    {{3, 30000}, {}, false, false}};
  for (const auto& c : layouts) {
    ad::Graph g;
    const auto value = random_array(c.shape, 31, -3.0, 7.0);
    auto x = ad::constant(g, value);
    const auto [m, v] = ad::nn::channel_moments(x, reduction_axes(c));
    ad::Session s(g);
    const auto out = s.run({m, v});
    const auto ch = ad::testing::channels(c.shape, c.kept);
    const auto ref = ad::testing::channel_stats(ad::testing::to_doubles(value), ch);
    BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[0]), ref.mean) < 1e-13);
    BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[1]), ref.variance) < 1e-13);
  }
}

BOOST_AUTO_TEST_CASE(channel_moments_float32_is_accurate_for_a_large_mean) {
  // 1e6 + N(0, 1): E[x^2] - E[x]^2 would lose every digit in float32.
  for (const ad::Shape& shape : {ad::Shape{64, 4, 1000}, ad::Shape{4096, 8}}) {
    const std::vector<int> axes = shape.rank() == 3 ? std::vector<int>{0, 2} : std::vector<int>{0};
    const auto value = ad::testing::random_normal(shape, 5, 1e6, 1.0).astype(ad::DType::Float32);
    ad::Graph g;
    const auto [m, v] = ad::nn::channel_moments(ad::constant(g, value), axes);
    ad::Session s(g);
    const auto out = s.run({m, v});
    const auto kept = shape.rank() == 3 ? std::vector<int>{1} : std::vector<int>{1};
    const auto ref = ad::testing::channel_stats(ad::testing::to_doubles(value),
                                                ad::testing::channels(shape, kept));
    for (std::size_t c = 0; c < ref.variance.size(); ++c) {
      BOOST_TEST(out[1].flat(static_cast<std::int64_t>(c)) == ref.variance[c],
                 boost::test_tools::tolerance(1e-3));
      BOOST_TEST(out[0].flat(static_cast<std::int64_t>(c)) == ref.mean[c],
                 boost::test_tools::tolerance(1e-7));
    }
  }
}

BOOST_AUTO_TEST_CASE(batch_norm_kernels_are_bitwise_identical_for_one_and_two_threads) {
  for (const auto& [shape, kept] : std::vector<std::pair<ad::Shape, std::vector<int>>>{
           {{8, 16, 32, 32}, {1}}, {{8, 32, 32, 16}, {3}}, {{512, 300}, {1}}}) {
    Config c{shape, kept, true, true};
    std::vector<std::vector<ad::Array>> results;
    for (const int threads : {1, 2}) {
      ad::set_num_threads(threads);
      ad::Graph g;
      auto x = ad::constant(g, random_array(shape, 3, -2.0, 2.0).astype(ad::DType::Float32));
      auto gamma =
          ad::constant(g, random_array(stat_shape(c), 4, 0.5, 1.5).astype(ad::DType::Float32));
      auto beta = ad::constant(g, random_array(stat_shape(c), 5).astype(ad::DType::Float32));
      auto dy = ad::constant(g, random_array(shape, 6).astype(ad::DType::Float32));
      const auto r =
          ad::nn::fused_batch_norm(x, gamma, beta, {}, {}, kEpsilon, reduction_axes(c), true);
      const auto grads = ad::gradients({r.y}, {x, gamma, beta}, {dy});
      ad::Session s(g);
      results.push_back(s.run({r.y, r.mean, r.variance, grads[0], grads[1], grads[2]}));
    }
    ad::set_num_threads(2);
    for (std::size_t i = 0; i < results[0].size(); ++i)
      BOOST_TEST(results[0][i].bitwise_equal(results[1][i]));
  }
}

// The training forward node (moments and normalization in one kernel) normalizes exactly as the
// separate ops do (TF's op order, then ChannelAffine, from the node's own statistics), and its
// statistics match the float64 reference.
BOOST_AUTO_TEST_CASE(training_forward_node_is_bitwise_the_composed_ops) {
  for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    for (const auto& c : configs()) {
      const auto values = values_for(c, true, 500);
      ad::Graph g;
      std::vector<ad::Tensor> in;
      for (const auto& v : values) in.push_back(ad::constant(g, v.astype(dtype)));
      const ad::Tensor scale = c.scale ? in[1] : ad::Tensor();
      const ad::Tensor offset = c.offset ? in[c.scale ? 2 : 1] : ad::Tensor();
      const auto axes = reduction_axes(c);
      const auto fused =
          ad::nn::fused_batch_norm(in[0], scale, offset, {}, {}, kEpsilon, axes, true);
      ad::Tensor inv = ad::rsqrt(fused.variance + kEpsilon);
      if (scale) inv = inv * scale;
      const ad::Tensor shift = offset ? offset - fused.mean * inv : -(fused.mean * inv);
      const auto y = ad::nn::channel_affine(in[0], inv, shift, axes);
      ad::Session s(g);
      const auto out = s.run({fused.y, y, fused.mean, fused.variance});
      BOOST_TEST(out[0].bitwise_equal(out[1]));
      const auto ref = ad::testing::channel_stats(ad::testing::to_doubles(values[0].astype(dtype)),
                                                  ad::testing::channels(c.shape, c.kept));
      const double tol = dtype == ad::DType::Float32 ? 1e-6 : 1e-13;
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[2]), ref.mean) < tol);
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[3]), ref.variance) < tol);
    }
  }
}

// Tensors above the streaming threshold (16 MiB) are written with non-temporal vector stores, and
// their statistics reduced in memory-order segments: y is bitwise the scalar x * inv + shift, and
// y and the gradients match the float64 reference.
BOOST_AUTO_TEST_CASE(large_tensors_stream_the_same_values) {
  for (const auto& c : std::vector<Config>{{{2, 8, 512, 520}, {1}, true, true},
                                           {{2, 512, 520, 8}, {3}, true, true}}) {
    for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
      const auto values = values_for(c, true, 600);
      const auto dy_value = random_array(c.shape, 601);
      ad::Graph g;
      const auto x = ad::constant(g, values[0].astype(dtype));
      const auto gamma = ad::constant(g, values[1].astype(dtype));
      const auto beta = ad::constant(g, values[2].astype(dtype));
      const auto dy = ad::constant(g, dy_value.astype(dtype));
      const auto axes = reduction_axes(c);
      const auto r = ad::nn::fused_batch_norm(x, gamma, beta, {}, {}, kEpsilon, axes, true);
      const ad::Tensor inv = ad::rsqrt(r.variance + kEpsilon) * gamma;
      const ad::Tensor shift = beta - r.mean * inv;
      const auto grads = ad::gradients({r.y}, {x, gamma, beta}, {dy});
      ad::Session s(g);
      const auto out = s.run({r.y, inv, shift, grads[0], grads[1], grads[2]});
      // y against the scalar expression, element by element, in the tensor's own dtype.
      const auto ch = ad::testing::channels(c.shape, c.kept);
      const auto xs = values[0].astype(dtype);
      bool same = true;
      for (std::int64_t i = 0; i < xs.size() && same; ++i) {
        const auto k = ch.of[static_cast<std::size_t>(i)];
        if (dtype == ad::DType::Float32) {
          same = xs.data<float>()[i] * out[1].data<float>()[k] + out[2].data<float>()[k] ==
                 out[0].data<float>()[i];
        } else {
          same = xs.data<double>()[i] * out[1].data<double>()[k] + out[2].data<double>()[k] ==
                 out[0].data<double>()[i];
        }
      }
      BOOST_TEST(same);
      const auto xd = ad::testing::to_doubles(xs);
      const auto gd = ad::testing::to_doubles(values[1].astype(dtype));
      const auto bd = ad::testing::to_doubles(values[2].astype(dtype));
      const auto stats = ad::testing::channel_stats(xd, ch);
      const auto y_ref =
          ad::testing::normalize(xd, ch, stats.mean, stats.variance, gd, bd, kEpsilon);
      const auto ref = ad::testing::training_grads(
          xd, ad::testing::to_doubles(dy_value.astype(dtype)), ch, gd, kEpsilon);
      const double tol = dtype == ad::DType::Float32 ? 2e-5 : 1e-11;
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[0]), y_ref) < tol);
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[3]), ref.dx) < tol);
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[4]), ref.dgamma) < tol);
      BOOST_TEST(ad::testing::max_error(ad::testing::to_doubles(out[5]), ref.dbeta) < tol);
    }
  }
}

BOOST_AUTO_TEST_CASE(primitives_gradients_match_finite_differences) {
  for (const auto& c : configs()) {
    const auto axes = reduction_axes(c);
    ad::testing::check_gradient(
        [&](const std::vector<ad::Tensor>& in) {
          const auto [m, v] = ad::nn::channel_moments(in[0], axes);
          return ad::nn::channel_affine(in[0], m, v, axes) + ad::broadcast_like(v * m, in[0]);
        },
        {random_array(c.shape, 41, -2.0, 2.0)}, 1e-6, true);
  }
}

BOOST_AUTO_TEST_CASE(mismatched_statistics_are_rejected_with_shapes) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {2, 3, 4}, "x");
  const auto m = ad::placeholder(g, ad::DType::Float32, {1, 4, 1}, "m");
  BOOST_CHECK_EXCEPTION(
      (void)ad::fused_batch_norm_grad(x, x, {}, m, m, 1e-3, {0, 2}, false), ad::ValueError,
      (ad::testing::MessageHas{{"fused_batch_norm_grad", "[1, 4, 1]", "[2, 3, 4]", "[1, 3, 1]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
