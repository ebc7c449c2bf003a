// Training steps of the MLP in bench/mlp_model.h (784-512-512-10 + batch norm, SGD momentum), one
// thread, with the process's peak resident memory (VmHWM) as a counter. The process loads no
// LibTorch, so the peak is gradtape's own: libraries, model, optimizer slots, data and buffers.
// Run one batch size per process for its own peak, e.g. --benchmark_filter=BM_MlpTrainStep/32.
#include <benchmark/benchmark.h>

#include "mlp_model.h"
#include "side_by_side.h"

namespace {

void BM_MlpTrainStep(benchmark::State& state) {
  ad::set_num_threads(1);
  const std::int64_t batch = state.range(0);
  const auto rss_before = bench::proc_status_kib("VmRSS");
  bench::mlp::GradtapeMlp model(batch);
  for (int i = 0; i < 5; ++i) model.step(i, false);  // warm-up: plans and buffer pool
  int i = 5;
  for (auto _ : state) model.step(i++, false);
  state.counters["steps_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = static_cast<double>(bench::proc_status_kib("VmHWM")) / 1024.0;
  state.counters["rss_before_model_MiB"] = static_cast<double>(rss_before) / 1024.0;
  state.SetLabel("batch " + std::to_string(batch));
}

}  // namespace

BENCHMARK(BM_MlpTrainStep)->Arg(128)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
