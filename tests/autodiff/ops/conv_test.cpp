// conv2d ops: values of conv2d and both backprop ops against direct loops written here (strides,
// paddings, dilations, 1x1 and oversized windows, both data formats, chunked batches), first- and
// second-order gradients against float64 central differences, TF's SAME padding, error texts.
// float32 (the oneDNN path) is also checked on wide channels and odd batches and against the
// float64 path.
#include "autodiff/ops/conv.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

struct Case {
  std::int64_t n, h, w, c, kh, kw, f;
  std::array<std::int64_t, 2> strides{1, 1};
  std::array<std::int64_t, 2> dilations{1, 1};
  ad::Padding padding = ad::Padding::kValid;
};

// TF's rule, written out independently of the implementation.
struct Dim {
  std::int64_t out, pad;
};
Dim dim(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d, ad::Padding padding) {
  const std::int64_t eff = (k - 1) * d + 1;
  if (padding == ad::Padding::kValid) return {(in - eff) / s + 1, 0};
  const std::int64_t out = (in + s - 1) / s;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * s + eff - in, 0);
  return {out, total / 2};
}

// Logical NHWC index <-> storage index in the chosen format.
std::int64_t at(bool nchw, std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c,
                std::int64_t h, std::int64_t w, std::int64_t channels) {
  return nchw ? ((n * channels + c) * h + y) * w + x : ((n * h + y) * w + x) * channels + c;
}

ad::Shape shape_of(bool nchw, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
  return nchw ? ad::Shape{n, c, h, w} : ad::Shape{n, h, w, c};
}

ad::Conv2DParams params_of(const Case& k, bool nchw) {
  return {.strides = k.strides,
          .padding = k.padding,
          .data_format = nchw ? ad::DataFormat::kChannelsFirst : ad::DataFormat::kChannelsLast,
          .dilations = k.dilations};
}

// Visits every (output, tap) pair: f(x_index, w_index, y_index).
template <class F>
void for_each_tap(const Case& k, bool nchw, F f) {
  const Dim dh = dim(k.h, k.kh, k.strides[0], k.dilations[0], k.padding);
  const Dim dw = dim(k.w, k.kw, k.strides[1], k.dilations[1], k.padding);
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t oy = 0; oy < dh.out; ++oy)
      for (std::int64_t ox = 0; ox < dw.out; ++ox)
        for (std::int64_t i = 0; i < k.kh; ++i)
          for (std::int64_t j = 0; j < k.kw; ++j) {
            const std::int64_t y = oy * k.strides[0] - dh.pad + i * k.dilations[0];
            const std::int64_t x = ox * k.strides[1] - dw.pad + j * k.dilations[1];
            if (y < 0 || y >= k.h || x < 0 || x >= k.w) continue;
            for (std::int64_t c = 0; c < k.c; ++c)
              for (std::int64_t o = 0; o < k.f; ++o) {
                f(at(nchw, n, y, x, c, k.h, k.w, k.c), ((i * k.kw + j) * k.c + c) * k.f + o,
                  at(nchw, n, oy, ox, o, dh.out, dw.out, k.f));
              }
          }
}

ad::Shape out_shape(const Case& k, bool nchw) {
  return shape_of(nchw, k.n, dim(k.h, k.kh, k.strides[0], k.dilations[0], k.padding).out,
                  dim(k.w, k.kw, k.strides[1], k.dilations[1], k.padding).out, k.f);
}

// Runs conv2d and both backprop ops in `dtype` and compares them with the loops.
// Tolerances are relative to 1 + sum |terms| of each output (a dot product's rounding scale):
// `gemm_tolerance` for conv2d and backprop_input (sums over the taps), `sum_tolerance` for the
// filter gradient (a sum over the whole batch).
void check_values(const Case& k, bool nchw, ad::DType dtype, double gemm_tolerance,
                  double sum_tolerance) {
  const ad::Shape xs = shape_of(nchw, k.n, k.h, k.w, k.c);
  const ad::Shape ws{k.kh, k.kw, k.c, k.f};
  const ad::Shape ys = out_shape(k, nchw);
  const auto xv = random_array(xs, 11);
  const auto wv = random_array(ws, 12);
  const auto dyv = random_array(ys, 13);
  std::vector<double> y(static_cast<std::size_t>(ys.num_elements()), 0.0);
  std::vector<double> dx(static_cast<std::size_t>(xs.num_elements()), 0.0);
  std::vector<double> dw(static_cast<std::size_t>(ws.num_elements()), 0.0);
  // Sums of |terms|: a float32 GEMM accumulates in float32, so its error scales with these.
  std::vector<double> y_scale(y.size(), 1.0);
  std::vector<double> dx_scale(dx.size(), 1.0);
  std::vector<double> dw_scale(dw.size(), 1.0);
  const auto X = xv.data<double>();
  const auto W = wv.data<double>();
  const auto DY = dyv.data<double>();
  for_each_tap(k, nchw, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) {
    const auto a = static_cast<std::size_t>(xi);
    const auto b = static_cast<std::size_t>(wi);
    const auto o = static_cast<std::size_t>(yi);
    y[o] += X[a] * W[b];
    dx[a] += DY[o] * W[b];
    dw[b] += DY[o] * X[a];
    y_scale[o] += std::abs(X[a] * W[b]);
    dx_scale[a] += std::abs(DY[o] * W[b]);
    dw_scale[b] += std::abs(DY[o] * X[a]);
  });
  ad::Graph g;
  const ad::Shape unknown_batch = shape_of(nchw, -1, k.h, k.w, k.c);
  auto x = ad::placeholder(g, dtype, unknown_batch, "x");
  auto w = ad::placeholder(g, dtype, ws, "w");
  auto dy = ad::placeholder(g, dtype, ys, "dy");
  const auto p = params_of(k, nchw);
  auto out = ad::nn::conv2d(x, w, p);
  BOOST_TEST(out.shape()[nchw ? 2 : 1] == ys[nchw ? 2 : 1]);
  auto gx = ad::nn::conv2d_backprop_input(ad::shape(x), w, dy, p);
  auto gw = ad::nn::conv2d_backprop_filter(x, ws, dy, p);
  ad::Session s(g);
  const auto r =
      s.run({out, gx, gw}, {{x, xv.astype(dtype)}, {w, wv.astype(dtype)}, {dy, dyv.astype(dtype)}});
  BOOST_REQUIRE(r[0].shape() == ys);
  BOOST_REQUIRE(r[1].shape() == xs);
  BOOST_REQUIRE(r[2].shape() == ws);
  // Error relative to 1 + sum |terms| (a dot product's condition scale).
  auto compare = [&](const ad::Array& got, const std::vector<double>& want,
                     const std::vector<double>& scale, double tolerance, const char* what) {
    double worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      worst =
          std::max(worst, std::abs(got.flat(static_cast<std::int64_t>(i)) - want[i]) / scale[i]);
    }
    BOOST_TEST(worst <= tolerance, what << " differs by " << worst << " ("
                                        << (nchw ? "NCHW" : "NHWC") << ", input " << xs
                                        << ", filter " << ws << ")");
  };
  compare(r[0], y, y_scale, gemm_tolerance, "conv2d");
  compare(r[1], dx, dx_scale, gemm_tolerance, "conv2d_backprop_input");
  compare(r[2], dw, dw_scale, sum_tolerance, "conv2d_backprop_filter");
}

const std::vector<Case> kCases{
    {2, 5, 5, 2, 3, 3, 3},
    {2, 6, 7, 2, 3, 2, 2, {2, 2}, {1, 1}, ad::Padding::kSame},
    {1, 7, 6, 1, 2, 3, 2, {1, 2}, {2, 1}, ad::Padding::kSame},
    {2, 8, 8, 3, 3, 3, 2, {3, 3}, {2, 2}, ad::Padding::kValid},
    {2, 8, 9, 3, 3, 3, 2, {2, 1}, {1, 3}, ad::Padding::kSame},
    {3, 4, 5, 3, 1, 1, 2},                                       // 1x1, stride 1: no im2col
    {2, 5, 5, 3, 1, 1, 2, {2, 2}, {1, 1}, ad::Padding::kSame},   // 1x1 with stride
    {1, 4, 4, 2, 5, 5, 2, {1, 1}, {1, 1}, ad::Padding::kSame},   // window wider than the input
    {2, 7, 7, 2, 2, 2, 3, {3, 3}, {1, 1}, ad::Padding::kValid},  // pixels no window covers
    {2, 6, 6, 2, 4, 4, 2, {1, 1}, {1, 1}, ad::Padding::kSame},   // even window: more pad after
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_test)

BOOST_AUTO_TEST_CASE(same_padding_follows_tf) {
  // in 5, k 3, stride 2: out 3, pad_total max(2*2 + 3 - 5, 0) = 2 -> 1 before, 1 after.
  auto w = ad::conv_window(5, 3, 2, 1, ad::Padding::kSame);
  BOOST_TEST(w.out == 3);
  BOOST_TEST(w.pad_before == 1);
  BOOST_TEST(w.pad_after == 1);
  // in 6, k 4, stride 1: pad_total 3, the extra one after.
  w = ad::conv_window(6, 4, 1, 1, ad::Padding::kSame);
  BOOST_TEST(w.out == 6);
  BOOST_TEST(w.pad_before == 1);
  BOOST_TEST(w.pad_after == 2);
  // Dilation 2 makes a 3-tap window span 5.
  w = ad::conv_window(7, 3, 1, 2, ad::Padding::kValid);
  BOOST_TEST(w.out == 3);
  // in 7, k 2, stride 3: out 3, pad_total 1, all of it after.
  w = ad::conv_window(7, 2, 3, 1, ad::Padding::kSame);
  BOOST_TEST(w.out == 3);
  BOOST_TEST(w.pad_before == 0);
  BOOST_TEST(w.pad_after == 1);
}

BOOST_AUTO_TEST_CASE(values_match_direct_loops_in_both_formats) {
  for (const auto& k : kCases) {
    check_values(k, false, ad::DType::Float64, 1e-12, 1e-12);
    check_values(k, true, ad::DType::Float64, 1e-12, 1e-12);
    check_values(k, false, ad::DType::Float32, 1e-6, 1e-6);
    check_values(k, true, ad::DType::Float32, 1e-6, 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(large_batches_are_processed_in_chunks) {
  // 4096 outputs x 1152 taps per image exceed the im2col budget: one image per chunk, and the
  // filter gradient accumulates over the chunks.
  const Case k{3, 64, 64, 128, 3, 3, 2, {1, 1}, {1, 1}, ad::Padding::kSame};
  check_values(k, false, ad::DType::Float64, 1e-12, 1e-12);
  check_values(k, true, ad::DType::Float64, 1e-12, 1e-12);
  check_values(k, false, ad::DType::Float32, 1e-6, 1e-6);
  check_values(k, true, ad::DType::Float32, 1e-6, 1e-6);
}

// float32 runs through oneDNN, whose kernels differ with the channel counts (a first-layer kernel
// for few input channels, blocked kernels for 8 or more) and which splits batches into chunks (13
// images: chunks of 2 and a last one of 1). Each configuration is compared with the direct loops
// in float64, in both formats.
BOOST_AUTO_TEST_CASE(onednn_float32_matches_the_reference_on_wide_channels_and_odd_batches) {
  const std::vector<Case> cases{
      {13, 9, 9, 16, 3, 3, 32, {1, 1}, {1, 1}, ad::Padding::kSame},
      {9, 10, 11, 16, 3, 3, 24, {2, 2}, {1, 1}, ad::Padding::kSame},
      {5, 12, 12, 8, 3, 3, 16, {1, 2}, {2, 2}, ad::Padding::kValid},
      {8, 14, 14, 32, 5, 5, 64, {1, 1}, {1, 1}, ad::Padding::kSame},
      {16, 28, 28, 1, 5, 5, 32, {1, 1}, {1, 1}, ad::Padding::kSame},
      {3, 8, 8, 16, 1, 1, 16, {2, 2}, {1, 1}, ad::Padding::kValid},
  };
  for (const auto& k : cases) {
    check_values(k, false, ad::DType::Float32, 1e-6, 1e-6);
    check_values(k, true, ad::DType::Float32, 1e-6, 1e-6);
  }
}

// ad::gradients of a float32 convolution (the oneDNN path) against the same graph in float64 (the
// GEMM path, itself checked against finite differences below), for every case of kCases.
BOOST_AUTO_TEST_CASE(float32_gradients_match_the_float64_path) {
  for (const auto& k : kCases) {
    for (const bool nchw : {false, true}) {
      const auto p = params_of(k, nchw);
      const auto xv = random_array(shape_of(nchw, k.n, k.h, k.w, k.c), 41);
      const auto wv = random_array({k.kh, k.kw, k.c, k.f}, 42);
      const auto rv = random_array(out_shape(k, nchw), 43);
      std::vector<ad::Array> results[2];
      for (const int i : {0, 1}) {
        const ad::DType dtype = i == 0 ? ad::DType::Float64 : ad::DType::Float32;
        ad::Graph g;
        auto x = ad::constant(g, xv.astype(dtype));
        auto w = ad::constant(g, wv.astype(dtype));
        auto loss = ad::reduce_sum(ad::nn::conv2d(x, w, p) * ad::constant(g, rv.astype(dtype)));
        const auto grads = ad::gradients(loss, {x, w});
        ad::Session s(g);
        results[i] = s.run({loss, grads[0], grads[1]});
      }
      for (std::size_t j = 0; j < 3; ++j) {
        double worst = 0, scale = 1;
        for (std::int64_t e = 0; e < results[0][j].size(); ++e) {
          worst = std::max(worst, std::abs(results[1][j].flat(e) - results[0][j].flat(e)));
          scale = std::max(scale, std::abs(results[0][j].flat(e)));
        }
        BOOST_TEST(worst <= 1e-5 * scale, "output " << j << " differs by " << worst << " ("
                                                    << (nchw ? "NCHW" : "NHWC") << ")");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_first_and_second_order) {
  const std::vector<Case> cases{
      {2, 4, 5, 2, 3, 2, 2, {2, 1}, {1, 1}, ad::Padding::kSame},
      {1, 6, 5, 2, 2, 2, 2, {1, 2}, {2, 1}, ad::Padding::kValid},
      {2, 3, 3, 2, 1, 1, 3},
  };
  for (const auto& k : cases) {
    for (bool nchw : {false, true}) {
      const auto p = params_of(k, nchw);
      check_gradient(
          [&](const std::vector<ad::Tensor>& t) { return ad::nn::conv2d(t[0], t[1], p); },
          {random_array(shape_of(nchw, k.n, k.h, k.w, k.c), 21),
           random_array({k.kh, k.kw, k.c, k.f}, 22)},
          1e-6, true);
      // The backprop ops are differentiable in both operands too.
      const ad::Shape xs = shape_of(nchw, k.n, k.h, k.w, k.c);
      check_gradient(
          [&](const std::vector<ad::Tensor>& t) {
            auto sizes = ad::constant(t[0].graph(), ad::Array::vector(xs.to_vector()));
            return ad::nn::conv2d_backprop_input(sizes, t[0], t[1], p);
          },
          {random_array({k.kh, k.kw, k.c, k.f}, 23), random_array(out_shape(k, nchw), 24)}, 1e-6,
          true);
      check_gradient(
          [&](const std::vector<ad::Tensor>& t) {
            return ad::nn::conv2d_backprop_filter(t[0], {k.kh, k.kw, k.c, k.f}, t[1], p);
          },
          {random_array(xs, 25), random_array(out_shape(k, nchw), 26)}, 1e-6, true);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_empty_batch_gives_an_empty_output_and_a_zero_filter_gradient) {
  for (const bool nchw : {false, true}) {
    ad::Graph g;
    const ad::Conv2DParams p{
        .padding = ad::Padding::kSame,
        .data_format = nchw ? ad::DataFormat::kChannelsFirst : ad::DataFormat::kChannelsLast};
    auto x = ad::placeholder(g, ad::DType::Float32, shape_of(nchw, -1, 5, 5, 2), "x");
    auto w = ad::constant(g, random_array({3, 3, 2, 4}, 51).astype(ad::DType::Float32));
    auto y = ad::nn::conv2d(x, w, p);
    const auto grads = ad::gradients(ad::reduce_sum(y), {x, w});
    ad::Session s(g);
    const auto r =
        s.run({y, grads[0], grads[1]},
              {{x, ad::Array::full(ad::DType::Float32, shape_of(nchw, 0, 5, 5, 2), 1.0)}});
    BOOST_TEST(r[0].shape() == shape_of(nchw, 0, 5, 5, 4));
    BOOST_TEST(r[1].shape() == shape_of(nchw, 0, 5, 5, 2));
    BOOST_TEST(r[2].bitwise_equal(ad::Array::full(ad::DType::Float32, {3, 3, 2, 4}, 0.0)));
  }
}

BOOST_AUTO_TEST_CASE(unknown_spatial_dims_resolve_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, -1, -1, 2}, "x");
  auto w = ad::constant(g, random_array({3, 3, 2, 4}, 31));
  auto y = ad::nn::conv2d(x, w, {.strides = {2, 2}, .padding = ad::Padding::kSame});
  BOOST_TEST(y.shape() == ad::Shape({-1, -1, -1, 4}));
  auto dx = ad::gradients(ad::reduce_sum(y), {x})[0];
  BOOST_TEST(dx.shape() == ad::Shape({-1, -1, -1, 2}));
  ad::Session s(g);
  const auto r = s.run({y, dx}, {{x, random_array({2, 7, 8, 2}, 32)}});
  BOOST_TEST(r[0].shape() == ad::Shape({2, 4, 4, 4}));
  BOOST_TEST(r[1].shape() == ad::Shape({2, 7, 8, 2}));
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8, 8, 3}, "x");
  auto w = ad::placeholder(g, ad::DType::Float32, {3, 3, 4, 8}, "w");
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::conv2d(x, w), ad::ValueError,
      (MessageHas{{"conv2d 'Conv2D'", "3 channels", "[?, 8, 8, 3]", "expects 4", "[3, 3, 4, 8]"}}));
  auto w3 = ad::placeholder(g, ad::DType::Float32, {3, 3, 3, 8}, "w3");
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::conv2d(x, w3, {.data_format = ad::DataFormat::kChannelsFirst}), ad::ValueError,
      (MessageHas{{"8 channels", "channels_first", "expects 3"}}));
  auto flat = ad::placeholder(g, ad::DType::Float32, {-1, 64}, "flat");
  BOOST_CHECK_EXCEPTION((void)ad::nn::conv2d(flat, w3), ad::ValueError,
                        (MessageHas{{"conv2d", "rank 4", "[?, 64]"}}));
  auto big = ad::placeholder(g, ad::DType::Float32, {9, 9, 3, 1}, "big");
  BOOST_CHECK_EXCEPTION((void)ad::nn::conv2d(x, big), ad::ValueError,
                        (MessageHas{{"9x9 window", "[?, 8, 8, 3]", "padding same"}}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::conv2d(x, w3, {.strides = {0, 1}}), ad::ValueError,
                        (MessageHas{{"strides", ">= 1"}}));
  auto w64 = ad::placeholder(g, ad::DType::Float64, {3, 3, 3, 8}, "w64");
  BOOST_CHECK_EXCEPTION((void)ad::nn::conv2d(x, w64), ad::ValueError,
                        (MessageHas{{"different dtypes", "float64"}}));
  // Run time: a fed input whose channels do not fit.
  auto any = ad::placeholder(g, ad::DType::Float32, {-1, -1, -1, -1}, "any");
  auto y =
      ad::nn::conv2d(any, ad::constant(g, ad::Array::full(ad::DType::Float32, {3, 3, 3, 8}, 1.0)));
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(y, {{any, ad::Array::full(ad::DType::Float32, {1, 5, 5, 2}, 1.0)}}),
      ad::InvalidArgumentError,
      (MessageHas{{"Conv2D", "2 channels", "[1, 5, 5, 2]", "expects 3"}}));
}

BOOST_AUTO_TEST_SUITE_END()
