// Shape and indexing ops: values against NumPy-style reference loops written here, static shapes,
// gradients (first order, and second order through a square) against float64 central
// differences, thread-count independence of the scatter-adds, and error messages.

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <numeric>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;

namespace {

using Index = std::vector<std::int64_t>;

Index unflatten(std::int64_t flat, const ad::Shape& shape) {
  Index index(static_cast<std::size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    index[static_cast<std::size_t>(d)] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

std::int64_t flatten(const Index& index, const ad::Shape& shape) {
  std::int64_t flat = 0;
  for (int d = 0; d < shape.rank(); ++d)
    flat = flat * shape[d] + index[static_cast<std::size_t>(d)];
  return flat;
}

// The expected array: out[i] = value(multi-index i) for each element of `shape`.
std::vector<double> reference(const ad::Shape& shape,
                              const std::function<double(const Index&)>& value) {
  std::vector<double> out(static_cast<std::size_t>(shape.num_elements()));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = value(unflatten(static_cast<std::int64_t>(i), shape));
  return out;
}

void check_values(const ad::Array& actual, const ad::Shape& shape,
                  const std::vector<double>& expected) {
  BOOST_TEST(actual.shape() == shape, "shape " << actual.shape() << " != " << shape);
  BOOST_REQUIRE_EQUAL(actual.size(), static_cast<std::int64_t>(expected.size()));
  std::int64_t mismatches = 0;
  for (std::int64_t i = 0; i < actual.size(); ++i) {
    if (actual.flat(i) != expected[static_cast<std::size_t>(i)] && mismatches++ < 5) {
      BOOST_ERROR("element " << i << ": " << actual.flat(i)
                             << " != " << expected[static_cast<std::size_t>(i)]);
    }
  }
  BOOST_TEST(mismatches == 0);
}

// start, start + 1, ... in row-major order.
ad::Array iota_array(const ad::Shape& shape, ad::DType dtype = ad::DType::Float64,
                     double start = 0.0) {
  std::vector<double> v(static_cast<std::size_t>(shape.num_elements()));
  std::iota(v.begin(), v.end(), start);
  return ad::Array::from(v, shape).astype(dtype);
}

// Checks op(x) and, through a square, its gradient's gradient.
void check_linear_op(const std::function<ad::Tensor(const ad::Tensor&)>& op, const ad::Shape& shape,
                     std::uint64_t seed) {
  check_gradient([&](const std::vector<ad::Tensor>& x) { return op(x[0]); },
                 {random_array(shape, seed)});
  check_gradient([&](const std::vector<ad::Tensor>& x) { return ad::square(op(x[0])); },
                 {random_array(shape, seed + 1)}, 1e-6, true);
}

// The input as a tensor whose static shape has unknown dims, so gradients take run-time shapes.
ad::Tensor unknown_dims(const ad::Tensor& x, const ad::Shape& shape) {
  return ad::placeholder_with_default(x, shape);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(array_test)

BOOST_AUTO_TEST_CASE(reshape_infers_one_dim_and_aliases_its_input) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2, 3, 4}, "x");
  auto y = ad::reshape(x, {4, -1});
  BOOST_TEST(y.shape() == ad::Shape({4, 6}));
  ad::Session s(g);
  const auto value = iota_array({2, 3, 4});
  const auto out = s.eval(y, {{x, value}});
  check_values(out, {4, 6},
               reference({4, 6}, [](const Index& i) { return double(i[0] * 6 + i[1]); }));
  BOOST_TEST(out.shares_storage_with(value));
}

BOOST_AUTO_TEST_CASE(reshape_static_shape_keeps_unknown_batch) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 4, 5}, "x");
  auto y = ad::reshape(x, {-1, 20});
  BOOST_TEST(y.shape() == ad::Shape({-1, 20}));
  auto back = ad::reshape(y, ad::shape(x));
  BOOST_TEST(back.shape() == ad::Shape({-1, 4, 5}));
  ad::Session s(g);
  const auto out = s.run({y, back}, {{x, iota_array({3, 4, 5}, ad::DType::Float32)}});
  BOOST_TEST(out[0].shape() == ad::Shape({3, 20}));
  BOOST_TEST(out[1].shape() == ad::Shape({3, 4, 5}));
  BOOST_TEST(out[0].at({2, 19}) == 59.0);
}

BOOST_AUTO_TEST_CASE(reshape_by_runtime_shape_tensor) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {2, 6}, "x");
  auto dims = ad::placeholder(g, ad::DType::Int64, {2}, "dims");
  auto y = ad::reshape(x, dims);
  BOOST_TEST(y.shape() == ad::Shape({-1, -1}));
  ad::Session s(g);
  const auto out =
      s.eval(y, {{x, iota_array({2, 6})}, {dims, ad::Array::from<std::int64_t>({-1, 4}, {2})}});
  check_values(out, {3, 4},
               reference({3, 4}, [](const Index& i) { return double(i[0] * 4 + i[1]); }));
  BOOST_CHECK_EXCEPTION(
      s.eval(y, {{x, iota_array({2, 6})}, {dims, ad::Array::from<std::int64_t>({5, -1}, {2})}}),
      ad::InvalidArgumentError, (MessageHas{{"Reshape 'Reshape'", "[2, 6]", "[5, -1]", "12"}}));
  // A constant shape tensor is as good as a static shape.
  auto z = ad::reshape(x, ad::constant(g, ad::Array::from<std::int64_t>({3, -1}, {2})));
  BOOST_TEST(z.shape() == ad::Shape({3, 4}));
}

BOOST_AUTO_TEST_CASE(reshape_rejects_bad_shapes) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::reshape(x, {-1, -1}), ad::ValueError,
                        (MessageHas{{"reshape 'Reshape'", "[-1, -1]", "more than one -1"}}));
  BOOST_CHECK_EXCEPTION((void)ad::reshape(x, {4, 2}), ad::ValueError,
                        (MessageHas{{"reshape 'Reshape'", "'x:0'", "[2, 3]", "[4, 2]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::reshape(x, {-1, 4}), ad::ValueError,
                        (MessageHas{{"[2, 3]", "[-1, 4]", "not a multiple of 4"}}));
  auto batch = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "batch");
  BOOST_CHECK_EXCEPTION((void)ad::reshape(batch, {4, 5}), ad::ValueError,
                        (MessageHas{{"[?, 3]", "[4, 5]"}}));
  auto y = ad::reshape(batch, {2, 3});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(y, {{batch, ad::Array(ad::DType::Float32, {4, 3})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"Reshape 'Reshape'", "[4, 3]", "12", "[2, 3]", "6"}}));
}

BOOST_AUTO_TEST_CASE(transpose_matches_reference_for_every_path) {
  const std::vector<std::pair<ad::Shape, std::vector<int>>> cases = {
      {{2, 3, 4, 5}, {0, 1, 2, 3}},  // memory order kept: aliases
      {{2, 3, 4, 5}, {1, 0, 2, 3}},  // outer dims swapped: contiguous runs
      {{2, 3, 4, 5}, {3, 2, 1, 0}},  // generic strided
      {{2, 3, 4, 5}, {0, 1, 3, 2}},  // last-two swap: batched tiles
      {{2, 3, 4, 5}, {0, 2, 3, 1}},  // merges to a batched 2-D transpose
      {{67, 45}, {1, 0}},            // 2-D tiles with ragged edges
      {{300, 200}, {1, 0}},          // large enough to run in parallel
      {{1, 7, 1, 3}, {3, 1, 2, 0}},  // size-1 dims
  };
  for (const auto& [shape, perm] : cases) {
    ad::Graph g;
    const auto value = iota_array(shape, ad::DType::Float32);
    auto y = ad::transpose(ad::constant(g, value), perm);
    ad::Shape out_shape;
    for (int p : perm) out_shape.push_back(shape[p]);
    ad::Session s(g);
    check_values(s.eval(y), out_shape, reference(out_shape, [&](const Index& i) {
                   Index src(i.size());
                   for (std::size_t d = 0; d < i.size(); ++d)
                     src[static_cast<std::size_t>(perm[d])] = i[d];
                   return double(flatten(src, shape));
                 }));
  }
}

BOOST_AUTO_TEST_CASE(transpose_defaults_to_reversed_dims_for_any_dtype) {
  ad::Graph g;
  auto ints = ad::constant(g, iota_array({2, 3, 4}, ad::DType::Int64));
  auto flags = ad::constant(
      g, ad::Array::from<bool>(std::vector<bool>{true, false, false, true, true, false}, {2, 3}));
  auto a = ad::transpose(ints);
  auto b = ad::transpose(flags);
  BOOST_TEST(a.shape() == ad::Shape({4, 3, 2}));
  ad::Session s(g);
  const auto out = s.run({a, b});
  check_values(out[0], {4, 3, 2}, reference({4, 3, 2}, [](const Index& i) {
                 return double(i[2] * 12 + i[1] * 4 + i[0]);
               }));
  check_values(out[1], {3, 2}, {1, 1, 0, 1, 0, 0});
}

BOOST_AUTO_TEST_CASE(transpose_rejects_bad_permutations) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::transpose(x, {0, 0}), ad::ValueError,
                        (MessageHas{{"transpose 'Transpose'", "[0, 0]", "'x:0'", "[2, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::transpose(x, {0, 1, 2}), ad::ValueError,
                        (MessageHas{{"transpose 'Transpose'", "[0, 1, 2]"}}));
}

BOOST_AUTO_TEST_CASE(expand_dims_and_squeeze_change_only_the_shape) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 1, 3}, "x");
  auto e0 = ad::expand_dims(x, 0);
  auto e_last = ad::expand_dims(x, -1);
  auto s_all = ad::squeeze(x);
  auto s1 = ad::squeeze(e_last, {-1, 1});
  BOOST_TEST(e0.shape() == ad::Shape({1, -1, 1, 3}));
  BOOST_TEST(e_last.shape() == ad::Shape({-1, 1, 3, 1}));
  BOOST_TEST(s_all.shape() == ad::Shape({-1, 3}));
  BOOST_TEST(s1.shape() == ad::Shape({-1, 3}));
  ad::Session s(g);
  const auto value = iota_array({2, 1, 3});
  const auto out = s.run({e0, e_last, s_all, s1}, {{x, value}});
  BOOST_TEST(out[0].shape() == ad::Shape({1, 2, 1, 3}));
  BOOST_TEST(out[1].shape() == ad::Shape({2, 1, 3, 1}));
  check_values(out[2], {2, 3}, {0, 1, 2, 3, 4, 5});
  check_values(out[3], {2, 3}, {0, 1, 2, 3, 4, 5});
  BOOST_TEST(out[2].shares_storage_with(value));

  BOOST_CHECK_EXCEPTION((void)ad::squeeze(x, {2}), ad::ValueError,
                        (MessageHas{{"squeeze 'Squeeze_2'", "axis 2", "[?, 1, 3]", "size is 3"}}));
  BOOST_CHECK_EXCEPTION((void)ad::expand_dims(x, 5), ad::ValueError,
                        (MessageHas{{"expand_dims 'ExpandDims_2'", "axis 5", "-4 to 3"}}));
  auto batch = ad::squeeze(x, {0});
  BOOST_CHECK_EXCEPTION(s.eval(batch, {{x, value}}), ad::InvalidArgumentError,
                        (MessageHas{{"Squeeze 'Squeeze", "axis 0", "[2, 1, 3]"}}));
}

BOOST_AUTO_TEST_CASE(broadcast_to_matches_reference) {
  ad::Graph g;
  auto x = ad::constant(g, iota_array({3, 1}));
  auto y = ad::broadcast_to(x, {2, 3, 4});
  ad::Session s(g);
  check_values(s.eval(y), {2, 3, 4},
               reference({2, 3, 4}, [](const Index& i) { return double(i[1]); }));
  BOOST_CHECK_EXCEPTION((void)ad::broadcast_to(x, {2, 4}), ad::ValueError,
                        (MessageHas{{"broadcast_to 'BroadcastTo_1'", "[3, 1]", "[2, 4]"}}));
}

BOOST_AUTO_TEST_CASE(concat_and_stack_match_reference) {
  const ad::Shape a_shape{2, 3, 4};
  const ad::Shape b_shape{2, 1, 4};
  const ad::Shape c_shape{2, 2, 4};
  ad::Graph g;
  auto a = ad::constant(g, iota_array(a_shape));
  auto b = ad::constant(g, iota_array(b_shape, ad::DType::Float64, 100.0));
  auto c = ad::constant(g, iota_array(c_shape, ad::DType::Float64, 200.0));
  auto y = ad::concat({a, b, c}, -2);
  BOOST_TEST(y.shape() == ad::Shape({2, 6, 4}));
  auto st = ad::stack({a, a, a}, 1);
  BOOST_TEST(st.shape() == ad::Shape({2, 3, 3, 4}));
  ad::Session s(g);
  const auto out = s.run({y, st});
  check_values(out[0], {2, 6, 4}, reference({2, 6, 4}, [&](const Index& i) {
                 if (i[1] < 3) return double(flatten({i[0], i[1], i[2]}, a_shape));
                 if (i[1] < 4) return 100.0 + double(flatten({i[0], 0, i[2]}, b_shape));
                 return 200.0 + double(flatten({i[0], i[1] - 4, i[2]}, c_shape));
               }));
  check_values(out[1], {2, 3, 3, 4}, reference({2, 3, 3, 4}, [&](const Index& i) {
                 return double(flatten({i[0], i[2], i[3]}, a_shape));
               }));
}

BOOST_AUTO_TEST_CASE(concat_rejects_mismatched_inputs) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {2, 3}, "a");
  auto b = ad::placeholder(g, ad::DType::Float32, {4, 3}, "b");
  auto r3 = ad::placeholder(g, ad::DType::Float32, {2, 3, 1}, "r3");
  auto d = ad::placeholder(g, ad::DType::Float64, {2, 3}, "d");
  BOOST_CHECK_EXCEPTION((void)ad::concat({a, b}, 1), ad::ValueError,
                        (MessageHas{{"concat 'concat'", "'b:0'", "[4, 3]", "[2, 3]", "dim 0"}}));
  BOOST_CHECK_EXCEPTION((void)ad::concat({a, r3}, 0), ad::ValueError,
                        (MessageHas{{"concat 'concat'", "rank 3", "[2, 3, 1]", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)ad::concat({a, d}, 0), ad::ValueError,
                        (MessageHas{{"concat 'concat'", "float64", "float32", "'d:0'"}}));
  BOOST_CHECK_EXCEPTION((void)ad::concat({a, b}, 2), ad::ValueError,
                        (MessageHas{{"concat 'concat'", "axis 2", "rank 2"}}));
  BOOST_CHECK_EXCEPTION((void)ad::stack({a, b}), ad::ValueError,
                        (MessageHas{{"stack 'stack'", "[4, 3]", "[2, 3]"}}));
  // Unknown dims are checked at run time.
  auto u = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "u");
  auto y = ad::concat({a, u}, 1);
  BOOST_TEST(y.shape() == ad::Shape({2, 6}));
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(y, {{a, ad::Array(ad::DType::Float32, {2, 3})},
                                   {u, ad::Array(ad::DType::Float32, {5, 3})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"ConcatV2 'concat'", "[5, 3]", "[2, 3]"}}));
}

BOOST_AUTO_TEST_CASE(slice_pad_and_tile_match_reference) {
  const ad::Shape shape{3, 4, 5};
  ad::Graph g;
  auto x = ad::constant(g, iota_array(shape));
  auto sl = ad::slice(x, {1, 0, 2}, {-1, 3, 2});
  auto pd = ad::pad(x, {{1, 0}, {0, 2}, {2, 1}});
  auto tl = ad::tile(x, {2, 1, 3});
  auto tl_rows = ad::tile(x, {1, 2, 1});
  BOOST_TEST(sl.shape() == ad::Shape({2, 3, 2}));
  BOOST_TEST(pd.shape() == ad::Shape({4, 6, 8}));
  BOOST_TEST(tl.shape() == ad::Shape({6, 4, 15}));
  ad::Session s(g);
  const auto out = s.run({sl, pd, tl, tl_rows});
  check_values(out[0], {2, 3, 2}, reference({2, 3, 2}, [&](const Index& i) {
                 return double(flatten({i[0] + 1, i[1], i[2] + 2}, shape));
               }));
  check_values(
      out[1], {4, 6, 8}, reference({4, 6, 8}, [&](const Index& i) {
        const Index src{i[0] - 1, i[1], i[2] - 2};
        for (int d = 0; d < 3; ++d)
          if (src[static_cast<std::size_t>(d)] < 0 || src[static_cast<std::size_t>(d)] >= shape[d])
            return 0.0;
        return double(flatten(src, shape));
      }));
  check_values(out[2], {6, 4, 15}, reference({6, 4, 15}, [&](const Index& i) {
                 return double(flatten({i[0] % 3, i[1], i[2] % 5}, shape));
               }));
  check_values(out[3], {3, 8, 5}, reference({3, 8, 5}, [&](const Index& i) {
                 return double(flatten({i[0], i[1] % 4, i[2]}, shape));
               }));
  BOOST_CHECK_EXCEPTION(
      (void)ad::slice(x, {0, 3, 0}, {1, 2, 1}), ad::ValueError,
      (MessageHas{{"slice 'Slice_1'", "[0, 3, 0]", "[1, 2, 1]", "[3, 4, 5]", "dim 1"}}));
  BOOST_CHECK_EXCEPTION((void)ad::pad(x, {{0, 0}}), ad::ValueError,
                        (MessageHas{{"pad 'Pad_1'", "[3, 4, 5]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::tile(x, {1, -1, 1}), ad::ValueError,
                        (MessageHas{{"tile 'Tile_2'", "[1, -1, 1]"}}));
}

BOOST_AUTO_TEST_CASE(slice_checks_unknown_dims_at_run_time) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1, 4}, "x");
  auto y = ad::slice(x, {2, 1}, {-1, 2});
  BOOST_TEST(y.shape() == ad::Shape({-1, 2}));
  ad::Session s(g);
  check_values(s.eval(y, {{x, iota_array({5, 4})}}), {3, 2}, {9, 10, 13, 14, 17, 18});
  BOOST_CHECK_EXCEPTION(s.eval(y, {{x, iota_array({1, 4})}}), ad::InvalidArgumentError,
                        (MessageHas{{"Slice 'Slice'", "[1, 4]", "[2, 1]"}}));
}

BOOST_AUTO_TEST_CASE(gather_matches_reference_on_any_axis) {
  const ad::Shape shape{3, 5, 2};
  ad::Graph g;
  auto params = ad::constant(g, iota_array(shape));
  const std::vector<std::int64_t> idx{4, 0, 4, 2, 1, 3};
  auto indices = ad::constant(g, ad::Array::from(idx, {2, 3}));
  auto y1 = ad::gather(params, indices, 1);
  auto y0 = ad::gather(params, indices, 0 - 3);
  BOOST_TEST(y1.shape() == ad::Shape({3, 2, 3, 2}));
  ad::Session s(g);
  check_values(
      s.eval(y1), {3, 2, 3, 2}, reference({3, 2, 3, 2}, [&](const Index& i) {
        return double(flatten({i[0], idx[static_cast<std::size_t>(i[1] * 3 + i[2])], i[3]}, shape));
      }));
  BOOST_CHECK_EXCEPTION(s.eval(y0), ad::InvalidArgumentError,
                        (MessageHas{{"GatherV2 'GatherV2_1'", "indices[0, 0] = 4", "[0, 3)"}}));
}

BOOST_AUTO_TEST_CASE(gather_reports_the_out_of_range_index) {
  ad::Graph g;
  auto params = ad::placeholder(g, ad::DType::Float32, {5, 2}, "params");
  auto indices = ad::placeholder(g, ad::DType::Int64, {2, 2}, "indices");
  auto y = ad::gather(params, indices);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(s.eval(y, {{params, ad::Array(ad::DType::Float32, {5, 2})},
                                   {indices, ad::Array::from<std::int64_t>({0, 1, 7, 2}, {2, 2})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"GatherV2 'GatherV2'", "indices[1, 0] = 7", "[0, 5)"}}));
  BOOST_CHECK_EXCEPTION(
      s.eval(y, {{params, ad::Array(ad::DType::Float32, {5, 2})},
                 {indices, ad::Array::from<std::int64_t>({0, -1, 1, 2}, {2, 2})}}),
      ad::InvalidArgumentError, (MessageHas{{"indices[0, 1] = -1", "[0, 5)"}}));
  auto f = ad::placeholder(g, ad::DType::Float32, {2}, "f");
  BOOST_CHECK_EXCEPTION((void)ad::gather(params, f), ad::ValueError,
                        (MessageHas{{"gather 'GatherV2_1'", "'f:0'", "float32", "int64"}}));
}

BOOST_AUTO_TEST_CASE(one_hot_gives_all_off_rows_for_out_of_range_indices) {
  ad::Graph g;
  const std::vector<std::int64_t> idx{0, 3, -1, 2, 4, 1};
  auto indices = ad::constant(g, ad::Array::from(idx, {2, 3}));
  auto y = ad::one_hot(indices, 4, 5.0, -1.0, ad::DType::Float64);
  auto b = ad::one_hot(indices, 4, 1.0, 0.0, ad::DType::Bool);
  BOOST_TEST(y.shape() == ad::Shape({2, 3, 4}));
  ad::Session s(g);
  const auto out = s.run({y, b});
  const auto expected = reference({2, 3, 4}, [&](const Index& i) {
    return idx[static_cast<std::size_t>(i[0] * 3 + i[1])] == i[2] ? 5.0 : -1.0;
  });
  check_values(out[0], {2, 3, 4}, expected);
  BOOST_TEST(out[1].dtype() == ad::DType::Bool);
  BOOST_TEST(out[1].at({0, 1, 3}) == 1.0);
  BOOST_TEST(out[1].at({1, 1, 3}) == 0.0);
}

BOOST_AUTO_TEST_CASE(where_broadcasts_all_three_operands) {
  const ad::Shape out_shape{2, 3, 4};
  ad::Graph g;
  const std::vector<bool> flags{true, false, true};
  auto cond = ad::constant(g, ad::Array::from(flags, {3, 1}));
  auto a = ad::constant(g, iota_array({2, 1, 4}));
  auto b = ad::constant(g, iota_array({4}, ad::DType::Float64, -10.0));
  auto y = ad::where(cond, a, b);
  BOOST_TEST(y.shape() == out_shape);
  ad::Session s(g);
  check_values(s.eval(y), out_shape, reference(out_shape, [&](const Index& i) {
                 return flags[static_cast<std::size_t>(i[1])] ? double(i[0] * 4 + i[2])
                                                              : double(i[2]) - 10.0;
               }));
  auto wrong = ad::constant(g, iota_array({2}));
  BOOST_CHECK_EXCEPTION((void)ad::where(cond, a, wrong), ad::ValueError,
                        (MessageHas{{"where 'SelectV2_1'", "[2, 1, 4]", "[2]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::where(a, a, a), ad::ValueError,
                        (MessageHas{{"where 'SelectV2_1'", "float64", "bool"}}));
}

BOOST_AUTO_TEST_CASE(fill_shape_and_size) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto dims = ad::shape(x);
  auto n = ad::size(x);
  auto f = ad::fill(dims, 2.5, ad::DType::Float64);
  BOOST_TEST(f.shape() == ad::Shape({-1, 3}));
  auto z = ad::zeros(g, {2, 2}, ad::DType::Int64);
  auto o = ad::ones(g, {3});
  BOOST_CHECK_EXCEPTION((void)ad::fill(g, {-1, 2}, 1.0), ad::ValueError,
                        (MessageHas{{"fill 'Fill", "[?, 2]", "fully defined"}}));
  ad::Session s(g);
  const auto out = s.run({dims, n, f, z, o}, {{x, ad::Array(ad::DType::Float32, {4, 3})}});
  check_values(out[0], {2}, {4, 3});
  BOOST_TEST(out[1].item<std::int64_t>() == 12);
  check_values(out[2], {4, 3}, std::vector<double>(12, 2.5));
  check_values(out[3], {2, 2}, {0, 0, 0, 0});
  BOOST_TEST(out[4].dtype() == ad::DType::Float32);
  check_values(out[4], {3}, {1, 1, 1});
}

BOOST_AUTO_TEST_CASE(empty_tensors_flow_through) {
  ad::Graph g;
  auto x = ad::constant(g, iota_array({3, 4}));
  auto none = ad::slice(x, {1, 0}, {0, -1});
  auto joined = ad::concat({none, x}, 0);
  auto picked = ad::gather(x, ad::constant(g, ad::Array(ad::DType::Int64, {0})));
  ad::Session s(g);
  const auto out = s.run({none, joined, picked});
  BOOST_TEST(out[0].shape() == ad::Shape({0, 4}));
  check_values(out[1], {3, 4},
               reference({3, 4}, [](const Index& i) { return double(i[0] * 4 + i[1]); }));
  BOOST_TEST(out[2].shape() == ad::Shape({0, 4}));
}

BOOST_AUTO_TEST_CASE(shape_op_gradients_match_finite_differences) {
  check_linear_op([](const ad::Tensor& x) { return ad::reshape(x, {4, -1}); }, {2, 3, 2}, 1);
  check_linear_op([](const ad::Tensor& x) { return ad::transpose(x, {2, 0, 1}); }, {2, 3, 4}, 3);
  check_linear_op([](const ad::Tensor& x) { return ad::expand_dims(x, 1); }, {3, 2}, 5);
  check_linear_op([](const ad::Tensor& x) { return ad::squeeze(x); }, {3, 1, 2}, 7);
  check_linear_op([](const ad::Tensor& x) { return ad::broadcast_to(x, {2, 3, 4}); }, {3, 1}, 9);
  check_linear_op([](const ad::Tensor& x) { return ad::slice(x, {1, 0}, {2, -1}); }, {4, 3}, 11);
  check_linear_op([](const ad::Tensor& x) { return ad::pad(x, {{1, 2}, {0, 1}}); }, {2, 3}, 13);
  check_linear_op([](const ad::Tensor& x) { return ad::tile(x, {2, 1, 3}); }, {2, 3, 2}, 15);
}

BOOST_AUTO_TEST_CASE(shape_op_gradients_with_unknown_static_dims) {
  const auto unknown = [](const ad::Tensor& x) { return unknown_dims(x, {-1, -1}); };
  check_linear_op([&](const ad::Tensor& x) { return ad::reshape(unknown(x), {-1}); }, {3, 4}, 21);
  check_linear_op([&](const ad::Tensor& x) { return ad::expand_dims(unknown(x), 0); }, {3, 4}, 23);
  check_linear_op(
      [&](const ad::Tensor& x) {
        return ad::slice(unknown(x), {1, 1}, {-1, 2});
      },
      {3, 4}, 25);
  check_linear_op(
      [&](const ad::Tensor& x) {
        return ad::pad(unknown(x), {{0, 1}, {2, 0}});
      },
      {3, 4}, 27);
  check_linear_op([&](const ad::Tensor& x) { return ad::tile(unknown(x), {3, 2}); }, {3, 4}, 29);
  check_linear_op([&](const ad::Tensor& x) { return ad::transpose(unknown(x)); }, {3, 4}, 31);
}

BOOST_AUTO_TEST_CASE(concat_and_stack_gradients_match_finite_differences) {
  const auto values = std::vector<ad::Array>{random_array({2, 3}, 41), random_array({2, 1}, 42),
                                             random_array({2, 2}, 43)};
  check_gradient([](const std::vector<ad::Tensor>& x) { return ad::concat(x, 1); }, values);
  check_gradient([](const std::vector<ad::Tensor>& x) { return ad::square(ad::concat(x, -1)); },
                 values, 1e-6, true);
  // Unknown sizes along the axis take the run-time path (ConcatPart).
  const auto unknown_rows =
      std::vector<ad::Array>{random_array({2, 3}, 44), random_array({1, 3}, 45)};
  check_gradient(
      [](const std::vector<ad::Tensor>& x) {
        return ad::square(
            ad::concat({unknown_dims(x[0], {-1, 3}), unknown_dims(x[1], {-1, 3})}, 0));
      },
      unknown_rows, 1e-6, true);
  check_gradient(
      [](const std::vector<ad::Tensor>& x) {
        return ad::square(ad::stack({x[0], x[1]}, 1));
      },
      {random_array({2, 3}, 46), random_array({2, 3}, 47)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(gather_and_where_gradients_match_finite_differences) {
  // Repeated indices: the gradient adds their rows.
  const auto indices = ad::Array::from<std::int64_t>({2, 0, 2, 2, 3, 0}, {3, 2});
  for (int axis : {0, 1}) {
    check_gradient(
        [&](const std::vector<ad::Tensor>& x) {
          return ad::square(ad::gather(x[0], ad::constant(x[0].graph(), indices), axis));
        },
        {random_array({4, 4, 2}, 50 + static_cast<std::uint64_t>(axis))}, 1e-6, true);
  }
  const std::vector<bool> flags{true, false, false, true, true, false};
  check_gradient(
      [&](const std::vector<ad::Tensor>& x) {
        auto cond = ad::constant(x[0].graph(), ad::Array::from(flags, {2, 3}));
        return ad::square(ad::where(cond, x[0], x[1]));
      },
      {random_array({2, 1}, 60), random_array({3}, 61)}, 1e-6, true);
}

BOOST_AUTO_TEST_CASE(scatter_adds_do_not_depend_on_the_thread_count) {
  // Large enough for both gradient kernels to run in parallel; float32 sums stay near float64.
  const std::int64_t rows = 64;
  const std::int64_t width = 1024;
  const std::int64_t picks = 4000;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(picks));
  for (std::size_t i = 0; i < idx.size(); ++i)
    idx[i] = static_cast<std::int64_t>((i * 7919) % rows);
  const auto dy = random_array({picks, width}, 70);
  const auto dy_tile = random_array({rows * 8, width}, 71);
  auto run = [&](ad::DType dtype, int threads) {
    ad::set_num_threads(threads);
    ad::Graph g;
    auto params = ad::placeholder(g, dtype, {rows, width}, "params");
    auto y = ad::gather(params, ad::constant(g, ad::Array::from(idx, {picks})));
    auto t = ad::tile(params, {8, 1});
    auto grads =
        ad::gradients({y, t}, {params},
                      {ad::constant(g, dy.astype(dtype)), ad::constant(g, dy_tile.astype(dtype))});
    ad::Session s(g);
    return s.eval(grads[0], {{params, ad::Array(dtype, {rows, width})}});
  };
  const auto one = run(ad::DType::Float32, 1);
  const auto two = run(ad::DType::Float32, 2);
  const auto reference64 = run(ad::DType::Float64, 2);
  ad::set_num_threads(2);
  BOOST_TEST(one.bitwise_equal(two));
  double worst = 0;
  for (std::int64_t i = 0; i < one.size(); ++i) {
    const double r = reference64.flat(i);
    worst = std::max(worst, std::abs(one.flat(i) - r) / std::max(1.0, std::abs(r)));
  }
  BOOST_TEST(worst <= 1e-5);
  // The gradient is the sum of dy over picked rows plus the sum over tiles, from a plain loop.
  std::vector<double> expected(static_cast<std::size_t>(rows * width), 0.0);
  for (std::int64_t j = 0; j < picks; ++j)
    for (std::int64_t c = 0; c < width; ++c)
      expected[static_cast<std::size_t>(idx[static_cast<std::size_t>(j)] * width + c)] +=
          dy.at({j, c});
  for (std::int64_t r = 0; r < rows * 8; ++r)
    for (std::int64_t c = 0; c < width; ++c)
      expected[static_cast<std::size_t>((r % rows) * width + c)] += dy_tile.at({r, c});
  double worst64 = 0;
  for (std::int64_t i = 0; i < reference64.size(); ++i)
    worst64 =
        std::max(worst64, std::abs(reference64.flat(i) - expected[static_cast<std::size_t>(i)]));
  BOOST_TEST(worst64 <= 1e-9);
}

BOOST_AUTO_TEST_SUITE_END()
