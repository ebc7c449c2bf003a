// flatten: static and run-time shapes (unknown batch and trailing dims), element order in both
// data formats, rank 1, gradients, errors.
#include "layers/flatten.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

namespace L = ad::layers;
using ad::testing::MessageHas;
using ad::testing::random_array;

BOOST_AUTO_TEST_SUITE(flatten_test)

BOOST_AUTO_TEST_CASE(keeps_the_batch_and_the_element_order) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 2, 3, 4}, "x");
  auto y = L::flatten(x);
  BOOST_TEST(y.shape() == ad::Shape({-1, 24}));
  // channels_first: [N, C, H, W] is flattened in [N, H, W, C] order.
  auto z = L::flatten(x, {.data_format = "channels_first"});
  BOOST_TEST(z.shape() == ad::Shape({-1, 24}));
  ad::Session s(g);
  const auto xv = random_array({3, 2, 3, 4}, 1);
  const auto r = s.run({y, z}, {{x, xv}});
  BOOST_TEST(r[0].shape() == ad::Shape({3, 24}));
  bool same = true;
  bool permuted = true;
  for (std::int64_t n = 0; n < 3; ++n)
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t h = 0; h < 3; ++h)
        for (std::int64_t w = 0; w < 4; ++w) {
          const double v = xv.at({n, c, h, w});
          same &= r[0].at({n, (c * 3 + h) * 4 + w}) == v;
          permuted &= r[1].at({n, (h * 4 + w) * 2 + c}) == v;
        }
  BOOST_TEST(same);
  BOOST_TEST(permuted);
}

BOOST_AUTO_TEST_CASE(unknown_dims_resolve_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, -1, 3}, "x");
  auto y = L::flatten(x);
  BOOST_TEST(y.shape().rank() == 2);
  auto fixed_batch = ad::placeholder(g, ad::DType::Float32, {5, -1}, "fixed");
  BOOST_TEST(L::flatten(fixed_batch).shape().rank() == 2);
  auto vec = ad::placeholder(g, ad::DType::Float32, {-1}, "vec");
  auto v = L::flatten(vec);
  BOOST_TEST(v.shape() == ad::Shape({-1, 1}));
  ad::Session s(g);
  const auto out = s.eval(y, {{x, ad::Array::full(ad::DType::Float32, {2, 7, 3}, 1.0)}});
  BOOST_TEST(out.shape() == ad::Shape({2, 21}));
  const auto empty = s.eval(y, {{x, ad::Array::full(ad::DType::Float32, {0, 7, 3}, 1.0)}});
  BOOST_TEST(empty.shape() == ad::Shape({0, 21}));
}

BOOST_AUTO_TEST_CASE(gradient_passes_through) {
  ad::testing::check_gradient(
      [](const auto& t) { return ad::tanh(L::flatten(t[0], {.data_format = "channels_first"})); },
      {random_array({2, 3, 2, 2}, 2)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(rejects_a_scalar) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {}, "x");
  BOOST_CHECK_EXCEPTION((void)L::flatten(x, {.name = "f"}), ad::ValueError,
                        (MessageHas{{"flatten 'f'", "scalar", "rank >= 1"}}));
}

BOOST_AUTO_TEST_SUITE_END()
