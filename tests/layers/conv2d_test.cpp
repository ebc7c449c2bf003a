// conv2d layer: values vs a direct convolution loop (strides, paddings, dilations, both data
// formats, bias, activation), shapes with unknown dims, names/reuse, option strings, losses,
// gradients for input, kernel and bias (first and second order), error texts.
#include "layers/conv2d.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

std::int64_t at(bool nchw, std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c,
                std::int64_t h, std::int64_t w, std::int64_t channels) {
  return nchw ? ((n * channels + c) * h + y) * w + x : ((n * h + y) * w + x) * channels + c;
}

struct Setup {
  std::int64_t n, h, w, c, kh, kw, f;
  std::int64_t sh, sw, dh, dw;
  bool same;
};

// A direct convolution with TF's padding rule: y = relu(conv(x, k) + b).
std::vector<double> reference(const Setup& s, bool nchw, const ad::Array& x, const ad::Array& k,
                              const ad::Array& b, std::int64_t& oh, std::int64_t& ow) {
  auto dim = [&](std::int64_t in, std::int64_t size, std::int64_t stride, std::int64_t dil,
                 std::int64_t& pad) {
    const std::int64_t eff = (size - 1) * dil + 1;
    if (!s.same) {
      pad = 0;
      return (in - eff) / stride + 1;
    }
    const std::int64_t out = (in + stride - 1) / stride;
    pad = std::max<std::int64_t>((out - 1) * stride + eff - in, 0) / 2;
    return out;
  };
  std::int64_t pt = 0;
  std::int64_t pl = 0;
  oh = dim(s.h, s.kh, s.sh, s.dh, pt);
  ow = dim(s.w, s.kw, s.sw, s.dw, pl);
  std::vector<double> y(static_cast<std::size_t>(s.n * oh * ow * s.f));
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox)
        for (std::int64_t o = 0; o < s.f; ++o) {
          double sum = b.flat(o);
          for (std::int64_t i = 0; i < s.kh; ++i)
            for (std::int64_t j = 0; j < s.kw; ++j) {
              const std::int64_t iy = oy * s.sh - pt + i * s.dh;
              const std::int64_t ix = ox * s.sw - pl + j * s.dw;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              for (std::int64_t c = 0; c < s.c; ++c) {
                sum += x.flat(at(nchw, n, iy, ix, c, s.h, s.w, s.c)) *
                       k.flat(((i * s.kw + j) * s.c + c) * s.f + o);
              }
            }
          y[static_cast<std::size_t>(at(nchw, n, oy, ox, o, oh, ow, s.f))] = std::max(sum, 0.0);
        }
  return y;
}

ad::Shape input_shape(const Setup& s, bool nchw, std::int64_t batch) {
  return nchw ? ad::Shape{batch, s.c, s.h, s.w} : ad::Shape{batch, s.h, s.w, s.c};
}

std::vector<std::string> names(const std::vector<ad::Variable>& vars) {
  std::vector<std::string> out;
  for (const auto& v : vars) out.push_back(v.name());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv2d_test)

BOOST_AUTO_TEST_CASE(output_matches_direct_convolution_in_both_formats) {
  const std::vector<Setup> setups{
      {2, 6, 5, 3, 3, 3, 4, 1, 1, 1, 1, false},
      {2, 7, 6, 2, 3, 2, 3, 2, 2, 1, 1, true},
      {1, 9, 8, 2, 3, 3, 2, 1, 2, 2, 1, true},
      {2, 8, 8, 1, 2, 2, 2, 3, 3, 1, 1, false},
  };
  for (const auto& s : setups) {
    for (bool nchw : {false, true}) {
      ad::Graph g;
      auto x = ad::placeholder(g, ad::DType::Float64, input_shape(s, nchw, -1), "x");
      L::Conv2D layer(s.f, {s.kh, s.kw},
                      {.strides = {s.sh, s.sw},
                       .padding = s.same ? "same" : "valid",
                       .data_format = nchw ? "channels_first" : "channels_last",
                       .dilation_rate = {s.dh, s.dw},
                       .activation = ad::relu});
      auto y = layer(x);
      BOOST_TEST(layer.kernel().shape() == ad::Shape({s.kh, s.kw, s.c, s.f}));
      BOOST_TEST(y.shape()[0] == -1);
      ad::Session session(g);
      session.run({ad::global_variables_initializer(g)});
      const auto b = random_array({s.f}, 3);
      session.set_value(layer.bias(), b);
      const auto xv = random_array(input_shape(s, nchw, s.n), 4);
      const auto out = session.eval(y, {{x, xv}});
      std::int64_t oh = 0;
      std::int64_t ow = 0;
      const auto expected = reference(s, nchw, xv, session.value(layer.kernel()), b, oh, ow);
      const ad::Shape want = nchw ? ad::Shape{s.n, s.f, oh, ow} : ad::Shape{s.n, oh, ow, s.f};
      BOOST_TEST(out.shape() == want);
      BOOST_TEST(y.shape() == (nchw ? ad::Shape{-1, s.f, oh, ow} : ad::Shape{-1, oh, ow, s.f}));
      double worst = 0;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        worst = std::max(worst, std::abs(out.data<double>()[i] - expected[i]));
      }
      BOOST_TEST(worst <= 1e-12, (nchw ? "NCHW " : "NHWC ") << want << ": " << worst);
    }
  }
}

BOOST_AUTO_TEST_CASE(names_reuse_and_losses_follow_tf1) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8, 8, 3}, "x");
  (void)L::conv2d(x, 4, 3);
  (void)L::conv2d(x, 4, 3, {.use_bias = false});
  (void)L::conv2d(x, 8, {5, 3}, {.kernel_regularizer = ad::regularizers::l2(0.1), .name = "c1"});
  BOOST_TEST(names(ad::global_variables(g)) ==
                 (std::vector<std::string>{"conv2d/kernel", "conv2d/bias", "conv2d_1/kernel",
                                           "c1/kernel", "c1/bias"}),
             boost::test_tools::per_element());
  BOOST_TEST(ad::global_variables(g)[3].shape() == ad::Shape({5, 3, 3, 8}));
  BOOST_TEST(g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES).size() == 1u);
  BOOST_CHECK_EXCEPTION((void)L::conv2d(x, 8, {5, 3}, {.name = "c1"}), ad::ValueError,
                        (MessageHas{{"Variable c1/kernel already exists"}}));
  (void)L::conv2d(x, 8, {5, 3}, {.name = "c1", .reuse = ad::Reuse::kTrue});
  BOOST_TEST(ad::global_variables(g).size() == 5u);
  BOOST_TEST(g.get_collection(ad::GraphKeys::REGULARIZATION_LOSSES).size() == 1u);
  L::Conv2D shared(2, 1, {.name = "shared"});
  (void)shared(x);
  (void)shared(x);
  BOOST_TEST(ad::global_variables(g).size() == 7u);
  BOOST_TEST(shared.params().padding == ad::Padding::kValid);
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_in_both_formats) {
  for (bool nchw : {false, true}) {
    ad::Graph g;
    const ad::Shape xs = nchw ? ad::Shape{2, 2, 5, 4} : ad::Shape{2, 5, 4, 2};
    auto x = ad::placeholder(g, ad::DType::Float64, xs, "x");
    L::Conv2D layer(
        3, {3, 2},
        {.strides = {2, 1},
         .padding = ad::Padding::kSame,
         .data_format = nchw ? ad::DataFormat::kChannelsFirst : ad::DataFormat::kChannelsLast,
         .activation = ad::tanh});
    auto y = layer(x);
    ad::Session s(g);
    s.run({ad::global_variables_initializer(g)});
    s.set_value(layer.bias(), random_array({3}, 5));
    const auto xv = random_array(xs, 6);
    const ad::FeedDict feeds{{x, xv}};
    const auto first = ad::compute_gradient_error(s, {x}, {xv}, y);
    BOOST_TEST(first.max_error <= 1e-6, first.worst);
    BOOST_TEST(ad::compute_gradient_error(s, {layer.kernel()}, y, feeds).max_error <= 1e-6);
    BOOST_TEST(ad::compute_gradient_error(s, {layer.bias()}, y, feeds).max_error <= 1e-6);
    // Second order through tanh and the convolution's backprop ops.
    auto v = ad::placeholder(g, ad::DType::Float64, xs, "v");
    const auto vv = random_array(xs, 7);
    const auto dx = ad::gradients(y, {x})[0];
    const auto dk = ad::gradients(y, {layer.kernel()})[0];
    const auto second = ad::compute_gradient_error(s, {x}, {xv}, dx * v, {{v, vv}});
    BOOST_TEST(second.max_error <= 1e-6, second.worst);
    const auto mixed = ad::compute_gradient_error(s, {x}, {xv}, dk);
    BOOST_TEST(mixed.max_error <= 1e-6, mixed.worst);
    BOOST_TEST(
        ad::compute_gradient_error(s, {layer.kernel()}, dx * v, {{x, xv}, {v, vv}}).max_error <=
        1e-6);
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer_and_shapes) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8, 8, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)L::conv2d(x, 4, 3, {.padding = "full", .name = "c"}), ad::ValueError,
                        (MessageHas{{"conv2d 'c'", "padding", "\"valid\" or \"same\"", "full"}}));
  BOOST_CHECK_EXCEPTION((void)L::conv2d(x, 4, 3, {.data_format = "NHWC"}), ad::ValueError,
                        (MessageHas{{"conv2d", "data_format", "channels_last", "NHWC"}}));
  auto flat = ad::placeholder(g, ad::DType::Float32, {-1, 64}, "flat");
  BOOST_CHECK_EXCEPTION((void)L::conv2d(flat, 4, 3, {.name = "c2"}), ad::ValueError,
                        (MessageHas{{"conv2d 'c2'", "rank 2", "[?, 64]", "rank 4"}}));
  auto unknown = ad::placeholder(g, ad::DType::Float32, {-1, 3, 8, -1}, "unknown");
  BOOST_CHECK_EXCEPTION((void)L::conv2d(unknown, 4, 3), ad::ValueError,
                        (MessageHas{{"channel dimension", "[?, 3, 8, ?]"}}));
  auto small = ad::placeholder(g, ad::DType::Float32, {-1, 2, 2, 3}, "small");
  BOOST_CHECK_EXCEPTION((void)L::conv2d(small, 4, 3, {.name = "c3"}), ad::ValueError,
                        (MessageHas{{"conv2d 'c3'", "3x3 kernel", "[?, 2, 2, 3]", "same"}}));
  BOOST_CHECK_EXCEPTION((void)L::conv2d(x, 4, {3, 0}), ad::ValueError,
                        (MessageHas{{"kernel_size must be positive"}}));
  L::Conv2D layer(4, 3, {.name = "c4"});
  (void)layer(x);
  auto other = ad::placeholder(g, ad::DType::Float32, {-1, 8, 8, 5}, "other");
  BOOST_CHECK_EXCEPTION(
      (void)layer(other), ad::ValueError,
      (MessageHas{{"conv2d 'c4'", "5 channels", "[?, 8, 8, 5]", "built for 3", "[3, 3, 3, 4]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
