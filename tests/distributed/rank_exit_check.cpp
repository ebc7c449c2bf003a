// Run under mpirun --enable-recovery: the last rank exits in the middle of the third step; every
// other rank must fail with DeadlineExceededError naming the allreduce and the missing rank within
// the collective timeout. Each survivor prints "rank_exit_check: rank <r> ok" or "... FAILED".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "autodiff/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/session.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"

namespace dist = ad::distributed;

namespace {

int report(bool ok, const std::string& what) {
  std::printf("rank_exit_check: rank %d %s: %s\n", dist::rank(), ok ? "ok" : "FAILED",
              what.c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  dist::init({.timeout = std::chrono::seconds(2)});
  const int last = dist::size() - 1;
  if (last == 0) return report(false, "needs at least 2 ranks");
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float64, {3}, "x");
  const auto y = dist::allreduce(x, dist::ReduceOp::kSum, "step_sum");
  ad::Session session(graph);
  const auto value = ad::Array::from<double>({1.0, 2.0, 3.0}, {3});
  for (int step = 0; step < 3; ++step) {
    if (step == 2 && dist::rank() == last) std::_Exit(0);  // dies without a word to its peers
    const auto start = std::chrono::steady_clock::now();
    try {
      (void)session.run({y}, {{x, value}});
    } catch (const dist::DeadlineExceededError& e) {
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const std::string message = e.what();
      const bool names_op = message.find("allreduce 'step_sum'") != std::string::npos;
      const bool names_rank = message.find("rank " + std::to_string(last)) != std::string::npos;
      const bool in_time = waited >= 1.9 && waited < 10.0;
      return report(
          step == 2 && names_op && names_rank && in_time,
          "step " + std::to_string(step) + " after " + std::to_string(waited) + " s: " + message);
    }
  }
  return report(false, "the third step completed without the last rank");
}
