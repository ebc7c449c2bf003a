// Training steps of the convnets in bench/cnn_model.h (float32 convolutions through oneDNN), NCHW
// and NHWC, 1 and 2 threads, without LibTorch in the process; GFLOP/s counts the convolutions' and
// dense layers' multiply-adds of a step (bench/cnn_model.h, step_flops). Arguments: net (0 small,
// 1 Fashion), layout (1 NCHW, 0 NHWC), threads.
#include <benchmark/benchmark.h>

#include "cnn_model.h"

namespace {

void BM_CnnTrainStep(benchmark::State& state) {
  const auto threads = static_cast<int>(state.range(2));
  ad::set_num_threads(threads);
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
  state.SetLabel(std::string(bench::cnn::net_name(net)) + (nchw ? ", NCHW, " : ", NHWC, ") +
                 std::to_string(threads) + " thread(s)");
}

}  // namespace

BENCHMARK(BM_CnnTrainStep)
    ->ArgsProduct({{0, 1}, {1, 0}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
