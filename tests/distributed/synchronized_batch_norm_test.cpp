// nn::synchronized_batch_norm (autodiff/ops/synchronized_batch_norm.cpp) with the statistics and
// the all-reduce of gradtape::distributed, on 1, 2 and 3 ranks (CTest runs this suite alone and
// under mpirun -np 2 and 3). The hand-written gradient is checked three ways, at first and second
// order, for x, gamma and beta: against float64 central differences of the objective summed over
// the ranks, and against the composed formula (nn::batch_normalization on the same global
// statistics, differentiated op by op). Ranks hold 5 / 3 / 0 rows, or the last one none.
#include <algorithm>
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
#include "autodiff/ops/nn.h"
#include "autodiff/ops/normalization.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"
#include "distributed/moments.h"
#include "tests/distributed/distributed_test_util.h"

namespace dist = ad::distributed;
using ad::testing::MpiFixture;
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

namespace {

constexpr std::int64_t kChannels = 3;
constexpr double kEpsilon = 1e-3;

// Rows of rank r: 5, 3, 0, 5, ... or, with `last_empty`, 4 + r and none on the last of several.
std::int64_t rows_of(int r, bool last_empty) {
  if (last_empty) return r == dist::size() - 1 && r > 0 ? 0 : 4 + r;
  return r % 3 == 0 ? 5 : (r % 3 == 1 ? 3 : 0);
}

// Rank r's input: channel c around 0.3 c with spread 1 + 0.5 c.
ad::Array input_of(int r, bool last_empty) {
  const std::int64_t rows = rows_of(r, last_empty);
  std::vector<double> v;
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const double t = 1.3 * static_cast<double>(i) + 0.7 * static_cast<double>(c) + 0.9 * r;
      v.push_back(0.3 * static_cast<double>(c) +
                  (1.0 + 0.5 * static_cast<double>(c)) * std::sin(t));
    }
  }
  return ad::Array::from(v, {rows, kChannels});
}

const ad::Array kGamma = ad::Array::from(std::vector<double>{1.3, 0.7, -0.9}, {kChannels});
const ad::Array kBeta = ad::Array::from(std::vector<double>{0.2, -0.1, 0.4}, {kChannels});

// L_r = sum(y^2 tanh(x) + w y) on each rank, its gradients, and the second-order objective
// S_r = sum(dL/dx tanh(x)) + sum((dL_r/dgamma)^2) with its gradients. The *_total tensors are sums
// over the ranks (the objectives the finite differences see, and the parameters' full gradients).
struct Problem {
  ad::Tensor x;
  ad::Tensor gamma;
  ad::Tensor beta;
  ad::Tensor total;
  ad::Tensor second_total;
  std::vector<ad::Tensor> first;   // d/dx (global objective), d/dgamma, d/dbeta (this rank's)
  std::vector<ad::Tensor> second;  // the same for S
  std::vector<ad::Tensor> parameter_totals;  // first[1], first[2], second[1], second[2] summed
};

Problem build(ad::Graph& graph, bool fused) {
  Problem p;
  p.x = ad::placeholder(graph, ad::DType::Float64, {-1, kChannels}, "x");
  p.gamma = ad::placeholder(graph, ad::DType::Float64, {kChannels}, "gamma");
  p.beta = ad::placeholder(graph, ad::DType::Float64, {kChannels}, "beta");
  const auto stats = dist::global_moments_and_count(p.x, {0}, /*keepdims=*/true);
  const auto sum = [](const ad::Tensor& t) { return dist::allreduce(t, dist::ReduceOp::kSum); };
  const ad::Tensor y = fused ? ad::nn::synchronized_batch_norm({.x = p.x,
                                                                .scale = p.gamma,
                                                                .offset = p.beta,
                                                                .mean = stats.mean,
                                                                .variance = stats.variance,
                                                                .count = stats.count},
                                                               kEpsilon, {0}, sum)
                             : ad::nn::batch_normalization(p.x, stats.mean, stats.variance, p.beta,
                                                           p.gamma, kEpsilon);
  const auto w =
      ad::constant(graph, ad::Array::from(std::vector<double>{0.5, -1.0, 2.0}, {kChannels}));
  const auto loss = ad::reduce_sum(y * y * ad::tanh(p.x) + w * y);
  p.first = ad::gradients(loss, {p.x, p.gamma, p.beta});
  const auto second =
      ad::reduce_sum(p.first[0] * ad::tanh(p.x)) + ad::reduce_sum(p.first[1] * p.first[1]);
  p.second = ad::gradients(second, {p.x, p.gamma, p.beta});
  p.total = sum(loss);
  p.second_total = sum(second);
  for (const auto& g : {p.first[1], p.first[2], p.second[1], p.second[2]})
    p.parameter_totals.push_back(sum(g));
  return p;
}

bool has_node(const ad::Graph& graph, const std::string& op) {
  for (int i = 0; i < graph.num_nodes(); ++i) {
    if (graph.node(i).op->name == op) return true;
  }
  return false;
}

// normwise: max|a - b| <= tol * max(1, max|b|).
void check_close(const ad::Array& a, const ad::Array& b, double tol, const std::string& what) {
  BOOST_TEST_REQUIRE(a.shape() == b.shape(),
                     what << ": shapes " << a.shape() << " and " << b.shape());
  double diff = 0;
  double scale = 1;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a.flat(i) - b.flat(i)));
    scale = std::max(scale, std::abs(b.flat(i)));
  }
  BOOST_TEST(diff <= tol * scale, what << ": max difference " << diff << ", max value " << scale);
}

double relative_error(double numeric, double exact) {
  return std::abs(numeric - exact) / std::max(1.0, std::abs(exact));
}

// Central differences (h = 1e-5) of `objective` (a sum over the ranks) against `analytic`:
// for x, each rank's elements in turn moved on that rank only; for gamma and beta, moved on
// every rank at once (a parameter shared by the ranks; `analytic` then is the summed gradient).
void check_against_differences(ad::Session& session, const Problem& p, const ad::Tensor& objective,
                               const std::vector<ad::Tensor>& analytic, bool last_empty,
                               const std::string& what) {
  constexpr double kStep = 1e-5;
  const int me = dist::rank();
  const ad::Array mine = input_of(me, last_empty);
  const auto exact = session.run(analytic, {{p.x, mine}, {p.gamma, kGamma}, {p.beta, kBeta}});
  const auto total_with = [&](const ad::Tensor& target, const ad::Array& value) {
    ad::FeedDict feeds{{p.x, mine}, {p.gamma, kGamma}, {p.beta, kBeta}};
    for (auto& [tensor, array] : feeds) {
      if (tensor == target) array = value;
    }
    return session.run({objective}, feeds)[0].data<double>()[0];
  };
  const auto moved = [&](const ad::Array& a, std::int64_t i, double by) {
    ad::Array b = a.clone();
    b.mutable_data<double>()[static_cast<std::size_t>(i)] += by;
    return b;
  };
  for (int k = 0; k < dist::size(); ++k) {
    for (std::int64_t i = 0; i < input_of(k, last_empty).size(); ++i) {
      const double plus = total_with(p.x, me == k ? moved(mine, i, kStep) : mine);
      const double minus = total_with(p.x, me == k ? moved(mine, i, -kStep) : mine);
      if (me != k) continue;
      const double numeric = (plus - minus) / (2 * kStep);
      const double value = exact[0].flat(i);
      BOOST_TEST(relative_error(numeric, value) <= 1e-7,
                 what << " d/dx, element " << i << ": " << value << " vs " << numeric);
    }
  }
  const ad::Tensor parameters[] = {p.gamma, p.beta};
  const ad::Array values[] = {kGamma, kBeta};
  for (int j = 0; j < 2; ++j) {
    for (std::int64_t c = 0; c < kChannels; ++c) {
      const double plus = total_with(parameters[j], moved(values[j], c, kStep));
      const double minus = total_with(parameters[j], moved(values[j], c, -kStep));
      const double numeric = (plus - minus) / (2 * kStep);
      const double value = exact[static_cast<std::size_t>(1 + j)].flat(c);
      BOOST_TEST(relative_error(numeric, value) <= 1e-7, what << (j == 0 ? " d/dgamma" : " d/dbeta")
                                                              << ", channel " << c << ": " << value
                                                              << " vs " << numeric);
    }
  }
}

void check_split(bool last_empty) {
  ad::Graph fused_graph;
  ad::Graph composed_graph;
  const Problem fused = build(fused_graph, true);
  const Problem composed = build(composed_graph, false);
  BOOST_TEST(has_node(fused_graph, "SyncBatchNormGrad"));
  BOOST_TEST(!has_node(composed_graph, "SyncBatchNormGrad"));
  ad::Session session(fused_graph);
  ad::Session composed_session(composed_graph);
  check_against_differences(session, fused, fused.total,
                            {fused.first[0], fused.parameter_totals[0], fused.parameter_totals[1]},
                            last_empty, "first order");
  check_against_differences(session, fused, fused.second_total,
                            {fused.second[0], fused.parameter_totals[2], fused.parameter_totals[3]},
                            last_empty, "second order");
  // Fused and composed agree to rounding: d/dx rank by rank, first-order d/dgamma and d/dbeta as
  // this rank's share (its own sums on both paths), second-order ones summed over the ranks (how
  // a rank's share splits depends on where the collectives' gradients route it).
  const ad::Array mine = input_of(dist::rank(), last_empty);
  const auto run = [&](ad::Session& s, const Problem& p) {
    std::vector<ad::Tensor> fetches = p.first;
    fetches.insert(fetches.end(), {p.second[0], p.parameter_totals[2], p.parameter_totals[3]});
    return s.run(fetches, {{p.x, mine}, {p.gamma, kGamma}, {p.beta, kBeta}});
  };
  const auto got = run(session, fused);
  const auto expected = run(composed_session, composed);
  const char* names[] = {"dL/dx", "dL/dgamma",        "dL/dbeta",
                         "dS/dx", "summed dS/dgamma", "summed dS/dbeta"};
  for (std::size_t i = 0; i < got.size(); ++i) check_close(got[i], expected[i], 1e-12, names[i]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(synchronized_batch_norm_test)

BOOST_AUTO_TEST_CASE(gradients_match_differences_and_the_composed_formula_at_two_orders) {
  for (const bool last_empty : {false, true}) {
    BOOST_TEST_CONTEXT((last_empty ? "last rank empty" : "5 / 3 / 0 rows")) {
      check_split(last_empty);
    }
  }
}

BOOST_AUTO_TEST_CASE(rejects_inputs_that_do_not_fit) {
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float64, {-1, kChannels}, "x");
  const auto stats = dist::global_moments_and_count(x, {0}, /*keepdims=*/true);
  const auto sum = [](const ad::Tensor& t) { return dist::allreduce(t, dist::ReduceOp::kSum); };
  const auto wrong = ad::constant(graph, ad::Array::from(std::vector<double>{1, 2}, {2}));
  BOOST_CHECK_EXCEPTION((void)ad::nn::synchronized_batch_norm({.x = x,
                                                               .scale = wrong,
                                                               .mean = stats.mean,
                                                               .variance = stats.variance,
                                                               .count = stats.count},
                                                              kEpsilon, {0}, sum),
                        ad::ValueError, [](const ad::ValueError& e) {
                          const std::string what = e.what();
                          return what.find("synchronized_batch_norm") != std::string::npos &&
                                 what.find("[2]") != std::string::npos &&
                                 what.find("[1, 3]") != std::string::npos;
                        });
  BOOST_CHECK_EXCEPTION(
      (void)ad::nn::synchronized_batch_norm(
          {.x = x, .mean = stats.mean, .variance = stats.variance, .count = stats.mean}, kEpsilon,
          {0}, sum),
      ad::ValueError, [](const ad::ValueError& e) {
        return std::string(e.what()).find("float64 scalar") != std::string::npos;
      });
}

BOOST_AUTO_TEST_SUITE_END()
