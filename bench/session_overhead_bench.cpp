// Session::run overhead: a chain of 100 tiny elementwise ops (alternately multiplying by and adding
// a constant), run forward only and forward+backward. With tensors of a few elements the kernels
// cost almost nothing, so the time per node is what the tape and the session add to every op.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "autodiff/autodiff.h"

namespace {

constexpr int kChainLength = 100;

struct Chain {
  explicit Chain(std::int64_t size) {
    x = ad::placeholder(graph, ad::DType::Float32, {size}, "x");
    const auto half = ad::scalar(graph, 0.5, ad::DType::Float32);
    const auto quarter = ad::scalar(graph, 0.25, ad::DType::Float32);
    y = x;
    for (int i = 0; i < kChainLength; ++i) y = i % 2 == 0 ? ad::mul(y, half) : ad::add(y, quarter);
    const int before = graph.num_nodes();
    dx = ad::gradients(y, {x})[0];
    backward_nodes = graph.num_nodes() - before;
    feeds = {{x, ad::Array::full(ad::DType::Float32, {size}, 1.0)}};
  }

  ad::Graph graph;
  ad::Tensor x;
  ad::Tensor y;
  ad::Tensor dx;
  int backward_nodes = 0;
  ad::FeedDict feeds;
};

void run_chain(benchmark::State& state, bool backward) {
  Chain chain(state.range(0));
  ad::Session session(chain.graph);
  const std::vector<ad::Tensor> fetches{backward ? chain.dx : chain.y};
  benchmark::DoNotOptimize(session.run(fetches, chain.feeds));  // plan once, outside the timing
  const auto before = session.stats();
  for (auto _ : state) benchmark::DoNotOptimize(session.run(fetches, chain.feeds));
  const auto after = session.stats();
  using benchmark::Counter;
  // Time per op of the forward chain (the unit LibTorch's per-op figures use) and, for
  // forward+backward, per recorded node (forward chain plus the nodes ad::gradients recorded).
  state.counters["per_op"] =
      Counter(kChainLength, Counter::kIsIterationInvariantRate | Counter::kInvert);
  const int nodes = kChainLength + (backward ? chain.backward_nodes : 0);
  state.counters["per_node"] =
      Counter(nodes, Counter::kIsIterationInvariantRate | Counter::kInvert);
  state.counters["nodes"] = nodes;
  state.counters["allocs_per_run"] =
      Counter(static_cast<double>(after.buffer_allocations - before.buffer_allocations),
              Counter::kAvgIterations);
}

void BM_forward(benchmark::State& state) { run_chain(state, false); }
void BM_forward_backward(benchmark::State& state) { run_chain(state, true); }

BENCHMARK(BM_forward)->Arg(1)->Arg(64);
BENCHMARK(BM_forward_backward)->Arg(1)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
