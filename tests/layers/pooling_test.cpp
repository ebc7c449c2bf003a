// max_pooling2d / average_pooling2d layers: values vs loops in both data formats, shapes with an
// unknown batch, op names and scopes, option strings, gradients, error texts.
#include "layers/pooling.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;
using ad::testing::random_array;

BOOST_AUTO_TEST_SUITE(pooling_test)

BOOST_AUTO_TEST_CASE(values_match_loops_in_both_formats) {
  // 2x2 windows, stride 2, on a 5x5 image: VALID keeps 2x2 outputs, SAME 3x3 with the last row
  // and column averaging fewer elements.
  const std::int64_t n = 2;
  const std::int64_t c = 3;
  const std::int64_t h = 5;
  for (bool nchw : {false, true}) {
    for (bool same : {false, true}) {
      ad::Graph g;
      const ad::Shape xs = nchw ? ad::Shape{n, c, h, h} : ad::Shape{n, h, h, c};
      auto x = ad::placeholder(g, ad::DType::Float64,
                               nchw ? ad::Shape{-1, c, h, h} : ad::Shape{-1, h, h, c}, "x");
      const L::Pooling2DOptions options{.padding = same ? "SAME" : "valid",
                                        .data_format = nchw ? "channels_first" : "channels_last"};
      auto mx = L::max_pooling2d(x, 2, 2, options);
      auto av = L::average_pooling2d(x, {2, 2}, {2, 2}, options);
      const std::int64_t o = same ? 3 : 2;
      BOOST_TEST(mx.shape() == (nchw ? ad::Shape{-1, c, o, o} : ad::Shape{-1, o, o, c}));
      ad::Session s(g);
      const auto xv = random_array(xs, 61);
      const auto r = s.run({mx, av}, {{x, xv}});
      auto idx = [&](std::int64_t b, std::int64_t y, std::int64_t xx, std::int64_t ch,
                     std::int64_t size) {
        return nchw ? ((b * c + ch) * size + y) * size + xx : ((b * size + y) * size + xx) * c + ch;
      };
      double worst = 0;
      for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t ch = 0; ch < c; ++ch)
          for (std::int64_t oy = 0; oy < o; ++oy)
            for (std::int64_t ox = 0; ox < o; ++ox) {
              double best = -1e300;
              double sum = 0;
              int count = 0;
              for (std::int64_t y = 2 * oy; y < std::min(2 * oy + 2, h); ++y)
                for (std::int64_t xx = 2 * ox; xx < std::min(2 * ox + 2, h); ++xx) {
                  const double v = xv.flat(idx(b, y, xx, ch, h));
                  best = std::max(best, v);
                  sum += v;
                  ++count;
                }
              worst = std::max(worst, std::abs(r[0].flat(idx(b, oy, ox, ch, o)) - best));
              worst = std::max(worst, std::abs(r[1].flat(idx(b, oy, ox, ch, o)) - sum / count));
            }
      BOOST_TEST(worst <= 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(ops_are_named_after_the_layer) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4, 4, 1}, "x");
  auto a = L::max_pooling2d(x, 2, 2);
  auto b = L::max_pooling2d(x, 2, 2);
  auto c = L::average_pooling2d(x, 2, 2, {.name = "pool"});
  L::MaxPooling2D object(2, 1);
  auto d = object(x);
  BOOST_TEST(a.op().name == "max_pooling2d/MaxPool");
  BOOST_TEST(b.op().name == "max_pooling2d_1/MaxPool");
  BOOST_TEST(c.op().name == "pool/AvgPool");
  BOOST_TEST(d.op().name == "max_pooling2d_2/MaxPool");
  BOOST_TEST(d.shape() == ad::Shape({-1, 3, 3, 1}));
  BOOST_TEST(object.params().strides[0] == 1);
  BOOST_TEST(ad::global_variables(g).empty());
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  for (bool nchw : {false, true}) {
    const L::Pooling2DOptions options{
        .padding = "same",
        .data_format = nchw ? ad::DataFormat::kChannelsFirst : ad::DataFormat::kChannelsLast};
    ad::testing::check_gradient(
        [&](const auto& t) { return L::max_pooling2d(t[0], 3, 2, options); },
        {random_array({2, 5, 5, 2}, 62)}, 1e-6, true);
    ad::testing::check_gradient(
        [&](const auto& t) { return L::average_pooling2d(t[0], 3, 2, options); },
        {random_array({2, 5, 5, 2}, 63)}, 1e-6, true);
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer_and_shapes) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4, 4, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)L::max_pooling2d(x, 2, 2, {.padding = "full", .name = "p"}),
                        ad::ValueError,
                        (MessageHas{{"max_pooling2d 'p'", "\"valid\" or \"same\"", "full"}}));
  auto flat = ad::placeholder(g, ad::DType::Float32, {-1, 16}, "flat");
  BOOST_CHECK_EXCEPTION((void)L::average_pooling2d(flat, 2, 2, {.name = "p2"}), ad::ValueError,
                        (MessageHas{{"average_pooling2d 'p2'", "rank 2", "[?, 16]", "rank 4"}}));
  BOOST_CHECK_EXCEPTION((void)L::max_pooling2d(x, 5, 1, {.name = "p3"}), ad::ValueError,
                        (MessageHas{{"max_pooling2d 'p3'", "5x5 window", "[?, 4, 4, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)L::max_pooling2d(x, 0, 1), ad::ValueError,
                        (MessageHas{{"max_pooling2d", "pool_size", "positive"}}));
}

BOOST_AUTO_TEST_SUITE_END()
