// Reductions: values against a NumPy-style reference loop written here (every axis set, keepdims,
// negative axes, every kernel path), float32 accuracy, bitwise determinism across thread counts,
// gradients (first and second order) against central differences, empty inputs and errors.

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::check_gradient;
using ad::testing::MessageHas;
using ad::testing::random_array;
namespace tt = boost::test_tools;

namespace {

enum class Kind { kSum, kMean, kMax, kMin, kProd, kLogSumExp };
constexpr Kind kAllKinds[] = {Kind::kSum, Kind::kMean, Kind::kMax,
                              Kind::kMin, Kind::kProd, Kind::kLogSumExp};

ad::Tensor reduce(Kind kind, const ad::Tensor& x, const std::vector<int>& axes, bool keepdims) {
  switch (kind) {
    case Kind::kSum:
      return ad::reduce_sum(x, axes, keepdims);
    case Kind::kMean:
      return ad::reduce_mean(x, axes, keepdims);
    case Kind::kMax:
      return ad::reduce_max(x, axes, keepdims);
    case Kind::kMin:
      return ad::reduce_min(x, axes, keepdims);
    case Kind::kProd:
      return ad::reduce_prod(x, axes, keepdims);
    case Kind::kLogSumExp:
      break;
  }
  return ad::reduce_logsumexp(x, axes, keepdims);
}

const char* kind_name(Kind kind) {
  constexpr const char* kNames[] = {"sum", "mean", "max", "min", "prod", "logsumexp"};
  return kNames[static_cast<int>(kind)];
}

struct Reference {
  ad::Shape shape;
  std::vector<double> values;
};

// The elements of x grouped by output position, found with explicit multi-indices: independent
// of how the library walks memory.
struct Groups {
  ad::Shape shape;
  std::vector<std::vector<long double>> members;
};

Groups group_elements(const ad::Array& x, std::vector<int> axes, bool keepdims) {
  const ad::Shape& shape = x.shape();
  const int rank = shape.rank();
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  }
  std::vector<bool> reduced(static_cast<std::size_t>(rank), false);
  for (int a : axes) reduced[static_cast<std::size_t>(a < 0 ? a + rank : a)] = true;
  Groups groups;
  std::vector<std::int64_t> out_stride(static_cast<std::size_t>(rank), 0);
  std::int64_t out_size = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (reduced[static_cast<std::size_t>(d)]) continue;
    out_stride[static_cast<std::size_t>(d)] = out_size;
    out_size *= shape[d];
  }
  for (int d = 0; d < rank; ++d) {
    if (!reduced[static_cast<std::size_t>(d)]) {
      groups.shape.push_back(shape[d]);
    } else if (keepdims) {
      groups.shape.push_back(1);
    }
  }
  groups.members.resize(static_cast<std::size_t>(out_size));
  for (std::int64_t flat = 0; flat < x.size(); ++flat) {
    std::int64_t rest = flat;
    std::int64_t o = 0;
    for (int d = rank - 1; d >= 0; --d) {
      o += (rest % shape[d]) * out_stride[static_cast<std::size_t>(d)];
      rest /= shape[d];
    }
    groups.members[static_cast<std::size_t>(o)].push_back(x.flat(flat));
  }
  return groups;
}

// Reduces each group in long double.
Reference reference(const Groups& groups, Kind kind) {
  Reference ref{groups.shape, {}};
  for (const auto& g : groups.members) {
    long double r = 0;
    switch (kind) {
      case Kind::kSum:
      case Kind::kMean:
        for (long double v : g) r += v;
        if (kind == Kind::kMean) r /= static_cast<long double>(g.size());
        break;
      case Kind::kMax:
        r = *std::max_element(g.begin(), g.end());
        break;
      case Kind::kMin:
        r = *std::min_element(g.begin(), g.end());
        break;
      case Kind::kProd:
        r = 1;
        for (long double v : g) r *= v;
        break;
      case Kind::kLogSumExp: {
        const long double m = *std::max_element(g.begin(), g.end());
        for (long double v : g) r += std::exp(v - m);
        r = std::log(r) + m;
        break;
      }
    }
    ref.values.push_back(static_cast<double>(r));
  }
  return ref;
}

Reference reference(const ad::Array& x, const std::vector<int>& axes, bool keepdims, Kind kind) {
  return reference(group_elements(x, axes, keepdims), kind);
}

// |got - want| <= tolerance * max(1, |want|) everywhere, reporting the worst element.
void check_close(const ad::Array& got, const Reference& want, double tolerance,
                 const std::string& what) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST(got.shape() == want.shape);
    BOOST_REQUIRE_EQUAL(got.size(), static_cast<std::int64_t>(want.values.size()));
    double worst = 0;
    std::int64_t at = 0;
    for (std::int64_t i = 0; i < got.size(); ++i) {
      const double w = want.values[static_cast<std::size_t>(i)];
      const double e = std::abs(got.flat(i) - w) / std::max(1.0, std::abs(w));
      if (!(e <= worst)) {
        worst = e;
        at = i;
      }
    }
    BOOST_TEST(worst <= tolerance, "worst error " << worst << " at element " << at << ": got "
                                                  << got.flat(at) << ", want "
                                                  << want.values[static_cast<std::size_t>(at)]);
  }
}

std::string describe(Kind kind, const ad::Shape& shape, const std::vector<int>& axes,
                     bool keepdims) {
  std::string s = std::string(kind_name(kind)) + " of " + shape.to_string() + " over {";
  for (int a : axes) s += std::to_string(a) + ",";
  return s + "} keepdims=" + (keepdims ? "true" : "false");
}

// Runs every reduction of x over `axes` and compares with the reference.
void check_all_kinds(const ad::Array& x, const std::vector<int>& axes, bool keepdims,
                     double tolerance) {
  ad::Graph g;
  const auto c = ad::constant(g, x);
  std::vector<ad::Tensor> ys;
  for (Kind kind : kAllKinds) ys.push_back(reduce(kind, c, axes, keepdims));
  ad::Session s(g);
  const auto out = s.run(ys);
  const Groups groups = group_elements(x, axes, keepdims);
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const Kind kind = kAllKinds[i];
    BOOST_TEST(ys[i].shape() == out[i].shape());  // static shape rule, fully known here
    check_close(out[i], reference(groups, kind), tolerance,
                describe(kind, x.shape(), axes, keepdims));
  }
}

const std::vector<std::vector<int>> kAxisSets = {
    {}, {0}, {1}, {2}, {3}, {-1}, {0, 2}, {1, 3}, {0, 2, 3}, {0, 1, 2}, {1, 2}, {-3, -1}, {3, 0}};

// Shapes and axes that reach each kernel path, with enough elements to run multi-threaded.
struct LargeCase {
  ad::Shape shape;
  std::vector<int> axes;
};
const std::vector<LargeCase> kLargeCases = {
    {{100000}, {}},                // one output: a long run cut into blocks reduced in parallel
    {{3, 20000}, {1}},             // few outputs, long runs
    {{500, 300}, {1}},             // many outputs, short runs grouped into blocks
    {{4, 16, 24, 24}, {0, 2, 3}},  // NCHW, many channels: one task per channel
    {{8, 3, 40, 40}, {0, 2, 3}},   // NCHW, few channels: blocks of planes in parallel
    {{5000, 64}, {0}},             // NHWC: all but the last axis, super-blocks in parallel
    {{100000, 3}, {0}},            // narrow rows, unrolled into wide ones
    {{70001, 5}, {0}},             // narrow rows that do not fill the unrolled width
    {{8000, 40}, {0}},             // rows just narrower than the unrolling threshold
    {{2, 400, 600}, {1}},          // wide rows: several column tasks, super-blocks in parallel
    {{40, 300, 20}, {1}},          // outer x reduced x inner, one task per outer index
    {{30, 40, 50}, {0, 2}},        // reduced, kept, reduced
    {{4, 20, 7, 300}, {1, 3}},     // kept, reduced, kept, reduced
};

}  // namespace

BOOST_AUTO_TEST_SUITE(reduce_test)

BOOST_AUTO_TEST_CASE(values_match_reference_loops_for_every_axis_set) {
  const ad::Array x = random_array({3, 4, 5, 6}, 1, 0.5, 1.5);
  for (const auto& axes : kAxisSets) {
    for (bool keepdims : {false, true}) check_all_kinds(x, axes, keepdims, 1e-12);
  }
}

BOOST_AUTO_TEST_CASE(float32_values_match_reference_loops) {
  const ad::Array x = random_array({3, 4, 5, 6}, 2, 0.5, 1.5).astype(ad::DType::Float32);
  for (const auto& axes : kAxisSets) {
    for (bool keepdims : {false, true}) check_all_kinds(x, axes, keepdims, 2e-6);
  }
}

BOOST_AUTO_TEST_CASE(size_one_dims_and_scalars_reduce_correctly) {
  check_all_kinds(random_array({1, 5, 1, 3}, 3), {0, 2}, false, 1e-12);
  check_all_kinds(random_array({1, 5, 1, 3}, 4), {1, 2}, true, 1e-12);
  check_all_kinds(random_array({1, 1}, 5), {}, false, 1e-12);
  check_all_kinds(random_array({}, 6), {}, false, 1e-12);
}

BOOST_AUTO_TEST_CASE(large_inputs_match_reference_on_every_kernel_path) {
  std::uint64_t seed = 10;
  for (const auto& c : kLargeCases) {
    // Values near 1 keep the products finite over long runs.
    const ad::Array x = random_array(c.shape, seed++, 0.999, 1.001).astype(ad::DType::Float32);
    check_all_kinds(x, c.axes, false, 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(results_are_bitwise_identical_with_one_and_two_threads) {
  // Float64 too: a float32 result would hide differences in its double accumulator.
  std::uint64_t seed = 30;
  const int saved = ad::num_threads();
  for (ad::DType dtype : {ad::DType::Float64, ad::DType::Float32}) {
    for (const auto& c : kLargeCases) {
      const ad::Array x = random_array(c.shape, seed++, -1, 1).astype(dtype);
      ad::Graph g;
      const auto t = ad::constant(g, x);
      const std::vector<ad::Tensor> ys = {
          ad::reduce_sum(t, c.axes), ad::reduce_mean(t, c.axes), ad::reduce_max(t, c.axes),
          ad::reduce_logsumexp(t, c.axes), ad::reduce_prod(t * 0.001 + 1.0, c.axes)};
      ad::Session s(g);
      ad::set_num_threads(1);
      const auto one = s.run(ys);
      ad::set_num_threads(2);
      const auto two = s.run(ys);
      for (std::size_t i = 0; i < ys.size(); ++i) {
        BOOST_TEST(one[i].bitwise_equal(two[i]), "output " << i << " for " << dtype << c.shape
                                                           << " differs between 1 and 2 threads");
      }
    }
  }
  ad::set_num_threads(saved);
}

BOOST_AUTO_TEST_CASE(float32_sum_of_a_million_values_stays_within_1e_5_of_float64) {
  // Positive values: a float32 running sum would drift far beyond 1e-5 here.
  const ad::Array x = random_array({1000000}, 7, 0.0, 1.0).astype(ad::DType::Float32);
  long double exact = 0;
  for (float v : x.data<float>()) exact += static_cast<long double>(v);
  ad::Graph g;
  const auto t = ad::constant(g, x);
  ad::Session s(g);
  const auto out = s.run({ad::reduce_sum(t), ad::reduce_mean(t), ad::reduce_sum(t, {0}, true)});
  const double want = static_cast<double>(exact);
  BOOST_TEST(std::abs(out[0].item<float>() - want) / want <= 1e-5);
  BOOST_TEST(std::abs(out[1].item<float>() - want / 1e6) / (want / 1e6) <= 1e-5);
  BOOST_TEST(out[2].shape() == ad::Shape({1}));
  BOOST_TEST(std::abs(out[2].at({0}) - want) / want <= 1e-5);
}

BOOST_AUTO_TEST_CASE(negative_axes_equal_their_positive_counterparts) {
  ad::Graph g;
  const auto x = ad::constant(g, random_array({2, 3, 4}, 8));
  ad::Session s(g);
  const auto out = s.run({ad::reduce_sum(x, {-1, -3}), ad::reduce_sum(x, {0, 2}),
                          ad::reduce_max(x, {-2}, true), ad::reduce_max(x, {1}, true)});
  BOOST_TEST(out[0].bitwise_equal(out[1]));
  BOOST_TEST(out[2].bitwise_equal(out[3]));
}

BOOST_AUTO_TEST_CASE(static_shape_rule_keeps_unknown_dims) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float64, {-1, 3, 4}, "x");
  const auto a = ad::reduce_sum(x, {1});
  const auto b = ad::reduce_mean(x, {1}, true);
  const auto c = ad::reduce_max(x, {0, 2});
  const auto d = ad::reduce_logsumexp(x);
  const auto e = ad::argmax(x, -1);
  BOOST_TEST(a.shape() == ad::Shape({-1, 4}));
  BOOST_TEST(b.shape() == ad::Shape({-1, 1, 4}));
  BOOST_TEST(c.shape() == ad::Shape({3}));
  BOOST_TEST(d.shape() == ad::Shape({}));
  BOOST_TEST(e.shape() == ad::Shape({-1, 3}));
  BOOST_TEST((e.dtype() == ad::DType::Int64));
  ad::Session s(g);
  const ad::Array value = random_array({5, 3, 4}, 9);
  const auto out = s.run({a, b}, {{x, value}});
  BOOST_TEST(out[0].shape() == ad::Shape({5, 4}));
  BOOST_TEST(out[1].shape() == ad::Shape({5, 1, 4}));
  check_close(out[1], reference(value, {1}, true, Kind::kMean), 1e-12, "mean over a fed batch");
}

BOOST_AUTO_TEST_CASE(int64_sum_mean_max_min_prod_are_exact) {
  ad::Graph g;
  const auto x = ad::constant(g, ad::Array::from<std::int64_t>({1, -2, 3, 4, 5, -7}, {2, 3}));
  ad::Session s(g);
  const auto out = s.run({ad::reduce_sum(x, {1}), ad::reduce_mean(x, {1}), ad::reduce_max(x, {0}),
                          ad::reduce_min(x), ad::reduce_prod(x, {0})});
  BOOST_TEST(out[0].data<std::int64_t>()[0] == 2);
  BOOST_TEST(out[0].data<std::int64_t>()[1] == 2);
  BOOST_TEST(out[1].data<std::int64_t>()[0] == 0);  // 2 / 3 truncates, as TF
  BOOST_TEST(out[1].data<std::int64_t>()[1] == 0);
  BOOST_TEST(out[2].data<std::int64_t>()[2] == 3);
  BOOST_TEST(out[3].item<std::int64_t>() == -7);
  BOOST_TEST(out[4].data<std::int64_t>()[1] == -10);
}

BOOST_AUTO_TEST_CASE(nan_propagates_through_max_and_min) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ad::Graph g;
  const auto x = ad::constant(g, ad::Array::from<double>({1, nan, 3, 4, 5, 6}, {2, 3}));
  ad::Session s(g);
  const auto out = s.run({ad::reduce_max(x, {1}), ad::reduce_min(x, {0}), ad::argmax(x, 1)});
  BOOST_TEST(std::isnan(out[0].at({0})));
  BOOST_TEST(out[0].at({1}) == 6.0);
  BOOST_TEST(std::isnan(out[1].at({1})));
  BOOST_TEST(out[1].at({2}) == 3.0);
  BOOST_TEST(out[2].at({0}) == 1.0);  // NaN counts as the largest
}

BOOST_AUTO_TEST_CASE(logsumexp_is_stable_for_large_and_infinite_inputs) {
  const double inf = std::numeric_limits<double>::infinity();
  ad::Graph g;
  const auto x = ad::constant(g, ad::Array::from<double>({1000, 1000, -inf, -inf, 5, inf}, {3, 2}));
  ad::Session s(g);
  const auto y = s.eval(ad::reduce_logsumexp(x, {1}));
  BOOST_TEST(y.at({0}) == 1000 + std::log(2.0), tt::tolerance(1e-14));
  BOOST_TEST(y.at({1}) == -inf);
  BOOST_TEST(y.at({2}) == inf);
}

BOOST_AUTO_TEST_CASE(zero_element_reductions_give_identities_or_clear_errors) {
  ad::Graph g;
  const auto x = ad::constant(g, ad::Array(ad::DType::Float64, {0, 3}));
  ad::Session s(g);
  const auto out = s.run({ad::reduce_sum(x, {0}), ad::reduce_mean(x, {0}), ad::reduce_prod(x, {0}),
                          ad::reduce_logsumexp(x, {0}), ad::reduce_max(x, {1}), ad::argmax(x, 1)});
  for (int j = 0; j < 3; ++j) {
    BOOST_TEST(out[0].at({j}) == 0.0);
    BOOST_TEST(std::isnan(out[1].at({j})));
    BOOST_TEST(out[2].at({j}) == 1.0);
    BOOST_TEST(out[3].at({j}) == -std::numeric_limits<double>::infinity());
  }
  BOOST_TEST(out[4].shape() == ad::Shape({0}));  // nothing to compute: no error
  BOOST_TEST(out[5].shape() == ad::Shape({0}));
  BOOST_CHECK_EXCEPTION((void)s.eval(ad::reduce_max(x, {0})), ad::InvalidArgumentError,
                        (MessageHas{{"Max 'Max_1'", "zero elements", "[0, 3]", "{0}"}}));
  BOOST_CHECK_EXCEPTION((void)s.eval(ad::reduce_min(x)), ad::InvalidArgumentError,
                        (MessageHas{{"Min 'Min'", "zero elements", "[0, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)s.eval(ad::argmin(x, 0)), ad::InvalidArgumentError,
                        (MessageHas{{"ArgMin 'ArgMin'", "argmin", "size 0", "[0, 3]"}}));
}

BOOST_AUTO_TEST_CASE(argmax_and_argmin_match_reference_and_pick_the_first_tie) {
  const ad::Array x = random_array({4, 5, 6}, 11);
  ad::Graph g;
  const auto t = ad::constant(g, x);
  ad::Session s(g);
  for (int axis : {0, 1, 2, -1}) {
    const auto out = s.run({ad::argmax(t, axis), ad::argmin(t, axis)});
    const int a = axis < 0 ? axis + 3 : axis;
    for (std::int64_t flat = 0; flat < out[0].size(); ++flat) {
      // The output's multi-index, with the reduced axis scanned explicitly.
      std::int64_t idx[3] = {};
      std::int64_t rest = flat;
      for (int d = 2; d >= 0; --d) {
        if (d == a) continue;
        idx[d] = rest % x.shape()[d];
        rest /= x.shape()[d];
      }
      std::int64_t best_max = 0;
      std::int64_t best_min = 0;
      double vmax = -1e300;
      double vmin = 1e300;
      for (std::int64_t i = 0; i < x.shape()[a]; ++i) {
        idx[a] = i;
        const double v = x.at({idx[0], idx[1], idx[2]});
        if (v > vmax) {
          vmax = v;
          best_max = i;
        }
        if (v < vmin) {
          vmin = v;
          best_min = i;
        }
      }
      BOOST_TEST(out[0].data<std::int64_t>()[static_cast<std::size_t>(flat)] == best_max);
      BOOST_TEST(out[1].data<std::int64_t>()[static_cast<std::size_t>(flat)] == best_min);
    }
  }
  const auto ties = ad::constant(g, ad::Array::from<double>({1, 3, 3, 0, 2, 2, 0, 1}, {2, 4}));
  const auto out = s.run({ad::argmax(ties, 1), ad::argmin(ties, 0)});
  BOOST_TEST(out[0].data<std::int64_t>()[0] == 1);
  BOOST_TEST(out[0].data<std::int64_t>()[1] == 0);
  BOOST_TEST(out[1].data<std::int64_t>()[1] == 1);
  BOOST_TEST(out[1].data<std::int64_t>()[3] == 0);
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences_first_and_second_order) {
  const std::vector<std::vector<int>> axis_sets = {{}, {0}, {1}, {-1}, {0, 2}, {1, 2}};
  std::uint64_t seed = 40;
  for (const auto& axes : axis_sets) {
    for (bool keepdims : {false, true}) {
      for (Kind kind : kAllKinds) {
        BOOST_TEST_CONTEXT(describe(kind, {2, 3, 4}, axes, keepdims)) {
          // Distinct values (no ties for max/min), away from 0 for prod.
          check_gradient(
              [&](const std::vector<ad::Tensor>& x) { return reduce(kind, x[0], axes, keepdims); },
              {random_array({2, 3, 4}, seed++, 0.5, 1.5)}, 1e-6, true);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_work_with_unknown_batch_dims) {
  for (Kind kind : kAllKinds) {
    ad::Graph g;
    const auto x = ad::placeholder(g, ad::DType::Float64, {-1, 3}, "x");
    const auto y = ad::mul(reduce(kind, x, {0}, false), reduce(kind, x, {1}, true));
    ad::Session s(g);
    const auto result = ad::compute_gradient_error(s, {x}, {random_array({4, 3}, 50, 0.5, 1.5)}, y);
    BOOST_TEST(result.max_error <= 1e-6, kind_name(kind) << ": " << result.worst);
  }
}

BOOST_AUTO_TEST_CASE(max_gradient_is_split_evenly_between_ties) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float64, {2, 4}, "x");
  const auto grads = ad::gradients(ad::reduce_sum(ad::reduce_max(x, {1})), {x});
  ad::Session s(g);
  const auto dx =
      s.eval(grads[0], {{x, ad::Array::from<double>({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4})}});
  const double want[] = {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0};
  for (std::int64_t i = 0; i < 8; ++i) BOOST_TEST(dx.flat(i) == want[i], tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(rejects_bad_axes_and_dtypes_with_clear_messages) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {2, 3}, "x");
  BOOST_CHECK_EXCEPTION((void)ad::reduce_sum(x, {2}), ad::ValueError,
                        (MessageHas{{"reduce_sum 'Sum'", "axis 2", "out of range", "[2, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::reduce_mean(x, {-3}), ad::ValueError,
                        (MessageHas{{"reduce_mean 'Mean'", "axis -3", "[2, 3]", "-2 to 1"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::reduce_max(x, {1, -1}), ad::ValueError,
      (MessageHas{{"reduce_max 'Max'", "axis -1", "repeated", "{1, -1}", "[2, 3]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::argmax(x, 2), ad::ValueError,
                        (MessageHas{{"argmax 'ArgMax'", "axis 2", "[2, 3]"}}));
  const auto flags = ad::placeholder(g, ad::DType::Bool, {2}, "flags");
  BOOST_CHECK_EXCEPTION((void)ad::reduce_sum(flags), ad::ValueError,
                        (MessageHas{{"reduce_sum", "'flags:0'", "bool", "cast"}}));
  const auto ints = ad::placeholder(g, ad::DType::Int64, {2}, "ints");
  BOOST_CHECK_EXCEPTION((void)ad::reduce_logsumexp(ints), ad::ValueError,
                        (MessageHas{{"reduce_logsumexp", "int64", "float32 or float64"}}));
  const auto scalar = ad::placeholder(g, ad::DType::Float64, {}, "s");
  BOOST_CHECK_EXCEPTION((void)ad::reduce_sum(scalar, {0}), ad::ValueError,
                        (MessageHas{{"reduce_sum", "axis 0", "[]", "no axes"}}));
}

BOOST_AUTO_TEST_SUITE_END()
