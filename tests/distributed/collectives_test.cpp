// Collective ops on 1, 2 and 3 ranks (CTest runs this suite alone and under mpirun -np 2 and 3):
// values against closed forms, bitwise agreement across ranks and runs, unequal and empty
// allgather parts, gradients (first and second order) against central differences of the
// objective summed over ranks, and the errors for mismatched shapes and diverged ranks.
#include "distributed/collectives.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "distributed/communicator.h"
#include "tests/distributed/distributed_test_util.h"
#include "tests/support/gradient_check.h"

namespace dist = ad::distributed;
using ad::testing::MessageHas;

using ad::testing::MpiFixture;
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

namespace {

// Rank r's values: (r + 1) / 8 + i / 4 (exact in binary, so every sum is exact).
ad::Array exact_values(int r, std::int64_t rows, std::int64_t cols, ad::DType dtype) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows * cols; ++i) {
    v.push_back((r + 1) / 8.0 + static_cast<double>(i) / 4.0);
  }
  return ad::Array::from(v, {rows, cols}).astype(dtype);
}

// Smooth, irregular values for gradient checks: sin of a rank-dependent phase.
ad::Array wavy_values(int r, std::int64_t rows, std::int64_t cols) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows * cols; ++i) {
    v.push_back(std::sin(1.3 * static_cast<double>(i) + 0.7 * r + 0.2));
  }
  return ad::Array::from(v, {rows, cols});
}

// A nonlinear local objective sum(w_r * y^2) with rank-dependent weights, so the gradient of the
// sum over ranks depends on every rank's contribution.
ad::Tensor local_objective(const ad::Tensor& y) {
  return ad::reduce_sum(y * y * (1.0 + 0.5 * dist::rank()) + y * 0.25);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(collectives_test)

BOOST_AUTO_TEST_CASE(allreduce_sum_and_mean_match_closed_forms_on_every_rank) {
  const int n = dist::size();
  for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    ad::Graph graph;
    const auto x = ad::placeholder(graph, dtype, {2, 3}, "x");
    const auto sum = dist::allreduce(x, dist::ReduceOp::kSum, "sum");
    const auto mean = dist::allreduce(x, dist::ReduceOp::kMean, "mean");
    ad::Session session(graph);
    const auto out = session.run({sum, mean}, {{x, exact_values(dist::rank(), 2, 3, dtype)}});
    for (std::int64_t i = 0; i < 6; ++i) {
      // sum over r of (r + 1) / 8 + i / 4 = n (n + 1) / 16 + n i / 4
      const double expected = n * (n + 1) / 16.0 + n * static_cast<double>(i) / 4.0;
      BOOST_TEST(out[0].flat(i) == expected);
      const double expected_mean = expected / n;  // rounded once to the dtype
      BOOST_TEST(out[1].flat(i) == (dtype == ad::DType::Float32
                                        ? static_cast<double>(static_cast<float>(expected_mean))
                                        : expected_mean));
    }
    BOOST_TEST(ad::testing::bitwise_same_on_every_rank(out[0]));
    BOOST_TEST(ad::testing::bitwise_same_on_every_rank(out[1]));
  }
}

// 1000 elements go through one exchange; at 3 ranks, 100003 (and a group of two tensors whose
// boundary falls inside a rank's range) through the reduce-scatter and all-gather: the same formula
// either way.
BOOST_AUTO_TEST_CASE(inexact_sums_are_bitwise_identical_on_every_rank_and_run) {
  for (const int count : {1000, 100003}) {
    ad::Graph graph;
    const auto x = ad::placeholder(graph, ad::DType::Float32, {-1}, "x");
    const auto z = ad::placeholder(graph, ad::DType::Float32, {-1}, "z");
    const auto y = dist::allreduce(x, dist::ReduceOp::kMean);
    const ad::Tensor group[] = {x, z};
    const auto sums = dist::grouped_allreduce(group, dist::ReduceOp::kSum);
    ad::Session session(graph);
    const auto value = [](int i, int r) { return std::sin(0.37f * static_cast<float>(i + r)); };
    std::vector<float> v;
    std::vector<float> w;
    for (int i = 0; i < count; ++i) v.push_back(value(i, dist::rank()));
    for (int i = 0; i < count / 3; ++i) w.push_back(value(i + count, dist::rank()));
    const ad::FeedDict feed = {{x, ad::Array::from(v, {count})},
                               {z, ad::Array::from(w, {count / 3})}};
    const auto first = session.run({y, sums[0], sums[1]}, feed);
    for (int run = 0; run < 3; ++run) {
      const auto again = session.run({y, sums[0], sums[1]}, feed);
      for (int k = 0; k < 3; ++k) BOOST_TEST(again[k].bitwise_equal(first[k]));
    }
    for (int k = 0; k < 3; ++k) BOOST_TEST(ad::testing::bitwise_same_on_every_rank(first[k]));
    // Rank-order summation in double, rounded once: the same as the formula computed here.
    const auto rank_sum = [&](int i) {
      double acc = 0;
      for (int r = 0; r < dist::size(); ++r) acc += value(i, r);
      return acc;
    };
    int wrong = 0;
    for (int i = 0; i < count; ++i) {
      wrong +=
          first[0].flat(i) != static_cast<double>(static_cast<float>(rank_sum(i) / dist::size()));
      wrong += first[1].flat(i) != static_cast<double>(static_cast<float>(rank_sum(i)));
    }
    for (int i = 0; i < count / 3; ++i) {
      wrong += first[2].flat(i) != static_cast<double>(static_cast<float>(rank_sum(i + count)));
    }
    BOOST_TEST(wrong == 0, count << " elements: " << wrong << " differ from the formula");
  }
}

BOOST_AUTO_TEST_CASE(allgather_concatenates_unequal_and_empty_parts_in_rank_order) {
  // Rank r holds r % 2 == 1 ? 0 rows : r + 1 rows.
  const auto rows_of = [](int r) -> std::int64_t { return r % 2 == 1 ? 0 : r + 1; };
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float64, {-1, 2}, "x");
  const auto y = dist::allgather(x, "gather");
  ad::Session session(graph);
  const ad::Array out = session.run(
      {y}, {{x, exact_values(dist::rank(), rows_of(dist::rank()), 2, ad::DType::Float64)}})[0];
  std::vector<double> expected;
  for (int r = 0; r < dist::size(); ++r) {
    const auto part = exact_values(r, rows_of(r), 2, ad::DType::Float64);
    for (std::int64_t i = 0; i < part.size(); ++i) expected.push_back(part.flat(i));
  }
  BOOST_TEST(out.shape() == (ad::Shape{static_cast<std::int64_t>(expected.size()) / 2, 2}));
  std::vector<double> got;
  for (std::int64_t i = 0; i < out.size(); ++i) got.push_back(out.flat(i));
  BOOST_TEST(got == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(broadcast_gives_the_roots_value) {
  const int root = dist::size() - 1;
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Int64, {3}, "x");
  const auto y = dist::broadcast(x, root, "from_last");
  ad::Session session(graph);
  const std::int64_t me = dist::rank();
  const ad::Array out =
      session.run({y}, {{x, ad::Array::from<std::int64_t>({me, 10 * me, -me}, {3})}})[0];
  const auto values = out.data<std::int64_t>();
  BOOST_TEST(values[0] == root);
  BOOST_TEST(values[1] == 10 * root);
  BOOST_TEST(values[2] == -root);
}

BOOST_AUTO_TEST_CASE(gradients_match_central_differences_of_the_summed_objective) {
  const auto rows_of = [](int r) -> std::int64_t { return r == 1 ? 0 : 2 + r; };
  struct Case {
    const char* name;
    std::function<ad::Tensor(const ad::Tensor&)> op;
    std::function<std::int64_t(int)> rows;
  };
  const std::vector<Case> cases = {
      {"allreduce sum",
       [](const ad::Tensor& x) { return dist::allreduce(x, dist::ReduceOp::kSum); },
       [](int) -> std::int64_t { return 2; }},
      {"allreduce mean",
       [](const ad::Tensor& x) { return dist::allreduce(x, dist::ReduceOp::kMean); },
       [](int) -> std::int64_t { return 2; }},
      {"broadcast", [](const ad::Tensor& x) { return dist::broadcast(x, dist::size() - 1); },
       [](int) -> std::int64_t { return 2; }},
      {"allgather", [](const ad::Tensor& x) { return dist::allgather(x); }, rows_of},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      ad::Graph graph;
      const auto x = ad::placeholder(graph, ad::DType::Float64, {-1, 2}, "x");
      const auto objective = local_objective(c.op(x));
      const double worst = ad::testing::check_global_gradient(
          graph, x, objective, [&](int r) { return wavy_values(r, c.rows(r), 2); });
      BOOST_TEST_MESSAGE(c.name << ": worst relative error " << worst);
    }
  }
}

BOOST_AUTO_TEST_CASE(second_order_gradients_match_central_differences) {
  // The objective is sum(v * g) with g = d(local objective)/dx: its gradient is a second-order
  // one, recorded through the collectives' gradients (themselves collectives).
  // allgather takes a different number of rows from rank 1; allreduce needs equal shapes.
  for (const bool gather : {false, true}) {
    BOOST_TEST_CONTEXT((gather ? "allgather" : "allreduce")) {
      ad::Graph graph;
      const auto x = ad::placeholder(graph, ad::DType::Float64, {-1, 2}, "x");
      const auto y = gather ? dist::allgather(x) : dist::allreduce(x, dist::ReduceOp::kMean);
      const auto g = ad::gradients({local_objective(y * y)}, {x})[0];
      const auto objective = ad::reduce_sum(g * ad::tanh(x));
      (void)ad::testing::check_global_gradient(
          graph, x, objective, [&](int r) { return wavy_values(r, gather && r == 1 ? 1 : 2, 2); });
    }
  }
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_name_the_ranks) {
  // Small tensors take one exchange, large ones (at 3 ranks) the reduce-scatter: both report the
  // shapes.
  for (const std::int64_t base : {std::int64_t{1}, std::int64_t{40000}}) {
    if (dist::size() == 1) return;  // nothing to disagree with
    ad::Graph graph;
    const auto x = ad::placeholder(graph, ad::DType::Float64, {-1}, "x");
    const auto y = dist::allreduce(x, dist::ReduceOp::kSum, "grads");
    ad::Session session(graph);
    const auto feed =
        ad::Array::from(std::vector<double>(static_cast<std::size_t>(base + dist::rank()), 1.0),
                        {base + dist::rank()});
    const std::string other = dist::rank() == 0 ? ad::str("rank 1 has float64[", base + 1, "]")
                                                : ad::str("rank 0 has float64[", base, "]");
    BOOST_CHECK_EXCEPTION((void)session.run({y}, {{x, feed}}), ad::InvalidArgumentError,
                          (MessageHas{{"Allreduce 'grads'", other}}));
    // The job goes on: every rank failed in the same collective.
    const auto same = ad::Array::from<double>({2.0}, {1});
    BOOST_TEST(session.run({y}, {{x, same}})[0].flat(0) == 2.0 * dist::size());
  }
}

BOOST_AUTO_TEST_CASE(ranks_in_different_collectives_are_reported) {
  if (dist::size() == 1) return;
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float64, {1}, "x");
  const auto a = dist::allreduce(x, dist::ReduceOp::kSum, "a");
  const auto b = dist::allreduce(x, dist::ReduceOp::kSum, "b");
  ad::Session session(graph);
  const auto feed = ad::Array::from<double>({1.0}, {1});
  BOOST_CHECK_EXCEPTION((void)session.run({dist::rank() == 0 ? a : b}, {{x, feed}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"is in collective", "the ranks took different paths"}}));
}

BOOST_AUTO_TEST_SUITE_END()
