// Pooling ops: max and average pooling and their gradient ops against loops written here (both
// data formats, VALID and SAME, strides that do not divide the input), TF's SAME averaging, ties,
// first- and second-order gradients against central differences, error texts.
#include "autodiff/ops/pool.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

struct Case {
  std::int64_t n, h, w, c, kh, kw, sh, sw;
  ad::Padding padding;
};

std::int64_t at(bool nchw, std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t c,
                std::int64_t h, std::int64_t w, std::int64_t channels) {
  return nchw ? ((n * channels + c) * h + y) * w + x : ((n * h + y) * w + x) * channels + c;
}

ad::Shape shape_of(bool nchw, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
  return nchw ? ad::Shape{n, c, h, w} : ad::Shape{n, h, w, c};
}

ad::Pool2DParams params_of(const Case& k, bool nchw) {
  return {.ksize = {k.kh, k.kw},
          .strides = {k.sh, k.sw},
          .padding = k.padding,
          .data_format = nchw ? ad::DataFormat::kChannelsFirst : ad::DataFormat::kChannelsLast};
}

// TF's output size and padding before, written out here.
std::pair<std::int64_t, std::int64_t> dim(std::int64_t in, std::int64_t k, std::int64_t s,
                                          ad::Padding padding) {
  if (padding == ad::Padding::kValid) return {(in - k) / s + 1, 0};
  const std::int64_t out = (in + s - 1) / s;
  return {out, std::max<std::int64_t>((out - 1) * s + k - in, 0) / 2};
}

struct Reference {
  ad::Shape out_shape;
  std::vector<double> max, avg, max_grad, avg_grad, max_grad_grad;
};

// Every output visits its in-bounds window in row-major order; the first strict maximum wins.
Reference reference(const Case& k, bool nchw, const ad::Array& x, const ad::Array& dy_max,
                    const ad::Array& ddx) {
  const auto [oh, pt] = dim(k.h, k.kh, k.sh, k.padding);
  const auto [ow, pl] = dim(k.w, k.kw, k.sw, k.padding);
  Reference r;
  r.out_shape = shape_of(nchw, k.n, oh, ow, k.c);
  const auto out_size = static_cast<std::size_t>(r.out_shape.num_elements());
  r.max.assign(out_size, 0);
  r.avg.assign(out_size, 0);
  r.max_grad_grad.assign(out_size, 0);
  r.max_grad.assign(static_cast<std::size_t>(x.size()), 0);
  r.avg_grad.assign(static_cast<std::size_t>(x.size()), 0);
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t c = 0; c < k.c; ++c)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox) {
          const auto o = static_cast<std::size_t>(at(nchw, n, oy, ox, c, oh, ow, k.c));
          double best = -std::numeric_limits<double>::infinity();
          std::int64_t best_at = -1;
          double sum = 0;
          std::vector<std::int64_t> taps;
          for (std::int64_t i = 0; i < k.kh; ++i)
            for (std::int64_t j = 0; j < k.kw; ++j) {
              const std::int64_t y = oy * k.sh - pt + i;
              const std::int64_t xx = ox * k.sw - pl + j;
              if (y < 0 || y >= k.h || xx < 0 || xx >= k.w) continue;
              const std::int64_t idx = at(nchw, n, y, xx, c, k.h, k.w, k.c);
              taps.push_back(idx);
              sum += x.flat(idx);
              if (best_at < 0 || x.flat(idx) > best) {
                best = x.flat(idx);
                best_at = idx;
              }
            }
          r.max[o] = best;
          r.avg[o] = sum / static_cast<double>(taps.size());
          r.max_grad[static_cast<std::size_t>(best_at)] +=
              dy_max.flat(static_cast<std::int64_t>(o));
          r.max_grad_grad[o] = ddx.flat(best_at);
          for (auto t : taps) {
            r.avg_grad[static_cast<std::size_t>(t)] +=
                dy_max.flat(static_cast<std::int64_t>(o)) / static_cast<double>(taps.size());
          }
        }
  return r;
}

void check_values(const Case& k, bool nchw, ad::DType dtype, double tolerance) {
  const ad::Shape xs = shape_of(nchw, k.n, k.h, k.w, k.c);
  const auto xv = random_array(xs, 41);
  const auto ddxv = random_array(xs, 42);
  ad::Graph g;
  auto x = ad::placeholder(g, dtype, shape_of(nchw, -1, k.h, k.w, k.c), "x");
  auto ddx = ad::placeholder(g, dtype, xs, "ddx");
  const auto p = params_of(k, nchw);
  auto mx = ad::nn::max_pool2d(x, p);
  auto av = ad::nn::avg_pool2d(x, p);
  const ad::Shape ys = mx.shape();
  BOOST_REQUIRE(ys[0] == -1);
  ad::Shape concrete = ys;
  concrete[0] = k.n;
  const auto dyv = random_array(concrete, 43);
  const Reference ref = reference(k, nchw, xv, dyv, ddxv);
  BOOST_REQUIRE(concrete == ref.out_shape);
  auto dy = ad::placeholder(g, dtype, concrete, "dy");
  auto mg = ad::nn::max_pool2d_grad(x, dy, p);
  auto ag = ad::nn::avg_pool2d_grad(ad::shape(x), dy, p);
  auto mgg = ad::nn::max_pool2d_grad_grad(x, ddx, p);
  ad::Session s(g);
  const auto r = s.run({mx, av, mg, ag, mgg},
                       {{x, xv.astype(dtype)}, {dy, dyv.astype(dtype)}, {ddx, ddxv.astype(dtype)}});
  const std::vector<const std::vector<double>*> want{&ref.max, &ref.avg, &ref.max_grad,
                                                     &ref.avg_grad, &ref.max_grad_grad};
  const char* what[] = {"max_pool2d", "avg_pool2d", "max_pool2d_grad", "avg_pool2d_grad",
                        "max_pool2d_grad_grad"};
  for (std::size_t i = 0; i < want.size(); ++i) {
    BOOST_REQUIRE(r[i].size() == static_cast<std::int64_t>(want[i]->size()));
    double worst = 0;
    for (std::size_t e = 0; e < want[i]->size(); ++e) {
      worst = std::max(worst, std::abs(r[i].flat(static_cast<std::int64_t>(e)) - (*want[i])[e]));
    }
    BOOST_TEST(worst <= tolerance, what[i] << (nchw ? " NCHW " : " NHWC ") << xs << ": " << worst);
  }
}

const std::vector<Case> kCases{
    {2, 4, 4, 3, 2, 2, 2, 2, ad::Padding::kValid},
    {2, 5, 7, 2, 2, 2, 2, 2, ad::Padding::kSame},
    {1, 7, 6, 3, 3, 3, 2, 2, ad::Padding::kValid},
    {2, 7, 6, 2, 3, 2, 2, 3, ad::Padding::kSame},
    {1, 5, 5, 2, 3, 3, 1, 1, ad::Padding::kSame},
    {2, 6, 6, 1, 2, 3, 3, 1, ad::Padding::kValid},
    // 65472 input elements: above detail::kParallelElements, so the planes run across threads.
    {4, 33, 31, 16, 3, 3, 2, 2, ad::Padding::kSame},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(pool_test)

BOOST_AUTO_TEST_CASE(values_and_gradients_match_loops_in_both_formats) {
  for (const auto& k : kCases) {
    for (bool nchw : {false, true}) {
      check_values(k, nchw, ad::DType::Float64, 1e-12);
      check_values(k, nchw, ad::DType::Float32, 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(same_average_excludes_padding) {
  // x = 1..9 in a 3x3 image; 2x2 windows with stride 2 and SAME padding (one row and column of
  // padding after): [[1+2+4+5]/4, (3+6)/2], [(7+8)/2, 9/1]].
  ad::Graph g;
  auto x = ad::constant(g, ad::Array::from<double>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3, 1}));
  auto y = ad::nn::avg_pool2d(x, {.padding = ad::Padding::kSame});
  ad::Session s(g);
  const auto v = s.eval(y);
  BOOST_TEST(v.shape() == ad::Shape({1, 2, 2, 1}));
  BOOST_TEST(v.flat(0) == 3.0);
  BOOST_TEST(v.flat(1) == 4.5);
  BOOST_TEST(v.flat(2) == 7.5);
  BOOST_TEST(v.flat(3) == 9.0);
}

BOOST_AUTO_TEST_CASE(max_gradient_goes_to_the_first_maximum_on_ties) {
  ad::Graph g;
  auto x = ad::constant(g, ad::Array::full(ad::DType::Float64, {1, 2, 2, 1}, 5.0));
  auto y = ad::nn::max_pool2d(x, {});
  auto dx = ad::gradients(ad::reduce_sum(y), {x})[0];
  ad::Session s(g);
  const auto v = s.eval(dx);
  BOOST_TEST(v.flat(0) == 1.0);
  BOOST_TEST(v.flat(1) == 0.0);
  BOOST_TEST(v.flat(2) == 0.0);
  BOOST_TEST(v.flat(3) == 0.0);
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_first_and_second_order) {
  const std::vector<Case> cases{{2, 5, 4, 2, 2, 2, 2, 1, ad::Padding::kSame},
                                {1, 5, 5, 2, 3, 2, 2, 2, ad::Padding::kValid}};
  for (const auto& k : cases) {
    for (bool nchw : {false, true}) {
      const auto p = params_of(k, nchw);
      const ad::Shape xs = shape_of(nchw, k.n, k.h, k.w, k.c);
      check_gradient([&](const auto& t) { return ad::nn::max_pool2d(t[0], p); },
                     {random_array(xs, 51)}, 1e-6, true);
      check_gradient([&](const auto& t) { return ad::nn::avg_pool2d(t[0], p); },
                     {random_array(xs, 52)}, 1e-6, true);
      // The gradient ops are linear in their gradient operand and differentiable in it.
      const auto xv = random_array(xs, 53);
      check_gradient(
          [&](const auto& t) {
            auto x = ad::constant(t[0].graph(), xv);
            return ad::nn::max_pool2d_grad(x, t[0], p);
          },
          {random_array(shape_of(nchw, k.n, dim(k.h, k.kh, k.sh, k.padding).first,
                                 dim(k.w, k.kw, k.sw, k.padding).first, k.c),
                        54)},
          1e-6, true);
      check_gradient(
          [&](const auto& t) {
            auto x = ad::constant(t[0].graph(), xv);
            return ad::nn::max_pool2d_grad_grad(x, t[0], p);
          },
          {random_array(xs, 55)}, 1e-6, true);
      check_gradient(
          [&](const auto& t) {
            auto sizes = ad::constant(t[0].graph(), ad::Array::vector(xs.to_vector()));
            return ad::nn::avg_pool2d_grad(sizes, t[0], p);
          },
          {random_array(shape_of(nchw, k.n, dim(k.h, k.kh, k.sh, k.padding).first,
                                 dim(k.w, k.kw, k.sw, k.padding).first, k.c),
                        56)},
          1e-6, true);
    }
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 2, 2, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::nn::max_pool2d(x, {.ksize = {3, 3}}), ad::ValueError,
                        (MessageHas{{"max_pool2d 'MaxPool'", "3x3 window", "[?, 2, 2, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::avg_pool2d(x, {.strides = {0, 1}}), ad::ValueError,
                        (MessageHas{{"avg_pool2d 'AvgPool'", "strides", ">= 1"}}));
  auto flat = ad::placeholder(g, ad::DType::Float32, {-1, 12}, "flat");
  BOOST_CHECK_EXCEPTION((void)ad::nn::max_pool2d(flat, {}), ad::ValueError,
                        (MessageHas{{"rank 4", "[?, 12]"}}));
  auto ints = ad::placeholder(g, ad::DType::Int64, {1, 2, 2, 1}, "ints");
  BOOST_CHECK_EXCEPTION((void)ad::nn::max_pool2d(ints, {}), ad::ValueError,
                        (MessageHas{{"int64", "float32"}}));
  auto any = ad::placeholder(g, ad::DType::Float32, {-1, -1, -1, 3}, "any");
  auto y = ad::nn::max_pool2d(any, {.ksize = {3, 3}});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(y, {{any, ad::Array::full(ad::DType::Float32, {1, 2, 5, 3}, 1.0)}}),
      ad::InvalidArgumentError, (MessageHas{{"MaxPool", "3x3 window", "[1, 2, 5, 3]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
