// Training steps of the convnets in bench/cnn_model.h (float32 convolutions through oneDNN), NCHW
// and NHWC, one thread, without LibTorch in the process; GFLOP/s counts the convolutions' and dense
// layers' multiply-adds of a step (bench/cnn_model.h, step_flops).
#include <benchmark/benchmark.h>
#include <omp.h>

#include "cnn_model.h"

namespace {

void BM_CnnTrainStep(benchmark::State& state) {
  omp_set_num_threads(1);
  const auto net = state.range(0) == 0 ? bench::cnn::Net::kSmall : bench::cnn::Net::kFashion;
  const bool nchw = state.range(1) == 1;
  bench::cnn::GradtapeNet model(net, nchw);
  for (int i = 0; i < 3; ++i) model.step(i, false);  // warm-up: plans, primitives, buffers
  int i = 3;
  for (auto _ : state) model.step(i++, false);
  const auto steps = static_cast<double>(state.iterations());
  state.counters["steps_per_s"] = benchmark::Counter(steps, benchmark::Counter::kIsRate);
  state.counters["GFLOP_per_s"] =
      benchmark::Counter(steps * bench::cnn::step_flops(net) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(bench::cnn::net_name(net)) + (nchw ? ", NCHW" : ", NHWC"));
}

}  // namespace

BENCHMARK(BM_CnnTrainStep)
    ->ArgsProduct({{0, 1}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
