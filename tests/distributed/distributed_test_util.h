// Helpers of the distributed suites: MPI set-up as a global fixture, a check that an array is
// bitwise the same on every rank, and a finite-difference check of a gradient whose objective is
// the sum over ranks of each rank's local objective.
#pragma once

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "autodiff/array.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/session.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"

namespace ad::testing {

// Joins the MPI job (one rank without mpirun); collectives give up after 20 s, before CTest's
// timeout, so a broken collective fails with its error rather than a killed job.
struct MpiFixture {
  MpiFixture() { distributed::init({.timeout = std::chrono::seconds(20)}); }
};

// True when `value` has the same dtype, shape and bytes on every rank (an allgather compares).
inline bool bitwise_same_on_every_rank(const Array& value) {
  Graph graph;
  Shape shape = value.shape();
  shape.insert(0, 1);
  const auto x = placeholder(graph, value.dtype(), shape, "value");
  const auto gathered = distributed::allgather(x, "bitwise_same_on_every_rank");
  Session session(graph);
  const Array all = session.run({gathered}, {{x, value.reshaped(shape)}})[0];
  bool same = all.shape()[0] == distributed::size();
  const auto* bytes = static_cast<const unsigned char*>(all.raw_data());
  const std::size_t n = value.nbytes();
  for (std::int64_t r = 0; same && r < all.shape()[0]; ++r) {
    same = std::equal(bytes, bytes + n, bytes + static_cast<std::size_t>(r) * n);
  }
  return same;
}

// Checks d(sum over ranks of objective_r)/d(x_r) on every rank against float64 central
// differences: for each rank k and element i, every rank runs the objective with x_k[i] moved by
// +-h on rank k only. `value_of(r)` is rank r's x (each rank computes every rank's, so all agree
// on the number of steps). Returns the largest relative error seen on this rank.
inline double check_global_gradient(Graph& graph, const Tensor& x, const Tensor& objective,
                                    const std::function<Array(int)>& value_of, double h = 1e-5) {
  const Tensor grad = gradients({objective}, {x})[0];
  const Tensor total = distributed::allreduce(objective, distributed::ReduceOp::kSum, "total");
  Session session(graph);
  const int me = distributed::rank();
  const Array mine = value_of(me);
  const Array analytic = session.run({grad}, {{x, mine}})[0];
  double worst = 0;
  for (int k = 0; k < distributed::size(); ++k) {
    const std::int64_t n = value_of(k).size();
    for (std::int64_t i = 0; i < n; ++i) {
      double sides[2] = {0, 0};
      for (int side = 0; side < 2; ++side) {
        Array moved = mine.clone();
        if (me == k) moved.mutable_data<double>()[static_cast<std::size_t>(i)] += side ? -h : h;
        sides[side] = session.run({total}, {{x, moved}})[0].data<double>()[0];
      }
      if (me != k) continue;
      const double numeric = (sides[0] - sides[1]) / (2 * h);
      const double exact = analytic.data<double>()[static_cast<std::size_t>(i)];
      const double error = std::abs(numeric - exact) / std::max(1.0, std::abs(exact));
      worst = std::max(worst, error);
      BOOST_TEST(error <= 1e-7, "rank " << me << " element " << i << ": analytic " << exact
                                        << ", central differences " << numeric);
    }
  }
  return worst;
}

}  // namespace ad::testing
