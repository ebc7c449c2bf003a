// Matrix product at the size of a first dense layer on MNIST: [256, 784] x [784, 512] float32,
// through Session::run (forward, and forward plus both input gradients), beside a direct
// cblas_sgemm call on the same sizes so the Session's share of the time is visible.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>
#include <vector>

#include "autodiff/autodiff.h"

namespace {

constexpr std::int64_t kM = 256;
constexpr std::int64_t kK = 784;
constexpr std::int64_t kN = 512;
constexpr double kFlops = 2.0 * kM * kK * kN;  // one multiply-add counts as two

ad::Array values(std::int64_t rows, std::int64_t cols, float scale) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(i % 17) - 0.5f;
  return ad::Array::from(v, {rows, cols});
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

void BM_cblas_sgemm(benchmark::State& state) {
  const auto a = values(kM, kK, 0.01f);
  const auto b = values(kK, kN, 0.02f);
  std::vector<float> c(static_cast<std::size_t>(kM * kN));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kM, kN, kK, 1.0f, a.data<float>().data(),
                kK, b.data<float>().data(), kN, 0.0f, c.data(), kN);
    benchmark::ClobberMemory();
  }
  set_flops(state, kFlops);
}

void BM_session_matmul(benchmark::State& state, bool backward) {
  ad::Graph g;
  auto a = ad::placeholder(g, ad::DType::Float32, {kM, kK}, "a");
  auto b = ad::placeholder(g, ad::DType::Float32, {kK, kN}, "b");
  auto dc = ad::placeholder(g, ad::DType::Float32, {kM, kN}, "dc");
  auto c = ad::matmul(a, b);
  std::vector<ad::Tensor> fetches{c};
  if (backward) {
    const auto grads = ad::gradients(std::vector<ad::Tensor>{c}, {a, b}, {dc});
    fetches = {c, grads[0], grads[1]};
  }
  const ad::FeedDict feeds{
      {a, values(kM, kK, 0.01f)}, {b, values(kK, kN, 0.02f)}, {dc, values(kM, kN, 0.03f)}};
  ad::Session session(g);
  benchmark::DoNotOptimize(session.run(fetches, feeds));
  for (auto _ : state) benchmark::DoNotOptimize(session.run(fetches, feeds));
  set_flops(state, backward ? 3 * kFlops : kFlops);
}

// Wall-clock time: OpenBLAS runs on OMP_NUM_THREADS threads, whose work the main thread's CPU time
// would not count.
BENCHMARK(BM_cblas_sgemm)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_session_matmul, forward, false)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_session_matmul, forward_backward, true)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
