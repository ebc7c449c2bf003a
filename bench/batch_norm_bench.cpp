// Batch normalization through the Session: training forward+backward and inference forward, on the
// fused path and on the composed path (fused=false), for the shapes of issue 4; and the training
// step of layer and group normalization, fused and composed. Reported as time and as effective
// bandwidth: bytes that must move (forward reads x and writes y; backward reads x and dy and writes
// dx) per second.
#include <benchmark/benchmark.h>

#include <random>

#include "autodiff/autodiff.h"
#include "layers/batch_normalization.h"
#include "layers/normalization.h"

namespace {

struct Case {
  ad::Shape shape;
  int axis;
};

const Case kCases[] = {
    {{32, 64, 56, 56}, 1}, {{32, 56, 56, 64}, 3}, {{256, 1024}, -1}, {{64, 256}, -1}};

ad::Array random_input(const ad::Shape& shape, std::uint64_t seed) {
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  std::normal_distribution<float> normal(0.5f, 2.0f);
  std::vector<float> v(static_cast<std::size_t>(shape.num_elements()));
  for (auto& e : v) e = normal(rng);
  return ad::Array::from(v, shape);
}

void run(benchmark::State& state, bool training, bool fused) {
  const Case& c = kCases[state.range(0)];
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, c.shape, "x");
  auto dy = ad::placeholder(g, ad::DType::Float32, c.shape, "dy");
  ad::layers::BatchNormalization bn({.axis = c.axis, .fused = fused});
  auto y = bn(x, training);
  ad::Tensor step;
  ad::FeedDict feeds{{x, random_input(c.shape, 1)}};
  if (training) {
    const auto grads = ad::gradients({y}, {x, bn.gamma(), bn.beta()}, {dy});
    step = ad::group({y, grads[0], grads[1], grads[2]});
    feeds.emplace_back(dy, random_input(c.shape, 2));
  } else {
    step = ad::group({y});
  }
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  session.run({step}, feeds);  // warm-up: plans and fills the buffer pool
  const auto before = session.stats().buffer_allocations;
  for (auto _ : state) session.run({step}, feeds);
  state.counters["allocs_per_run"] =
      benchmark::Counter(static_cast<double>(session.stats().buffer_allocations - before),
                         benchmark::Counter::kAvgIterations);
  const double elements = static_cast<double>(c.shape.num_elements());
  const double bytes = (training ? 5.0 : 2.0) * elements * sizeof(float);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.SetLabel(c.shape.to_string() + (c.axis == 1 ? " NCHW" : c.axis == 3 ? " NHWC" : ""));
}

void BM_BatchNormTrainFused(benchmark::State& state) { run(state, true, true); }
void BM_BatchNormTrainComposed(benchmark::State& state) { run(state, true, false); }
void BM_BatchNormInferenceFused(benchmark::State& state) { run(state, false, true); }
void BM_BatchNormInferenceComposed(benchmark::State& state) { run(state, false, false); }

// Layer norm on (256, 1024) and (64, 768) (transformer widths), group norm (32 groups) on NCHW and
// NHWC activations: training forward + backward (dx, dgamma, dbeta) in one Session::run.
struct NormCase {
  ad::Shape shape;
  bool group;  // group norm (else layer norm over the last axis)
  int axis;
};

const NormCase kNormCases[] = {{{256, 1024}, false, -1},
                               {{64, 768}, false, -1},
                               {{32, 64, 56, 56}, true, 1},
                               {{32, 56, 56, 64}, true, 3}};

void run_norm(benchmark::State& state, bool fused) {
  const NormCase& c = kNormCases[state.range(0)];
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, c.shape, "x");
  auto dy = ad::placeholder(g, ad::DType::Float32, c.shape, "dy");
  const auto y = c.group ? ad::layers::group_normalization(x, {.axis = c.axis, .fused = fused})
                         : ad::layers::layer_normalization(x, {.fused = fused});
  const auto vars = ad::trainable_variables(g);
  const auto grads = ad::gradients({y}, {x, vars[0], vars[1]}, {dy});
  const auto step = ad::group({y, grads[0], grads[1], grads[2]});
  const ad::FeedDict feeds{{x, random_input(c.shape, 1)}, {dy, random_input(c.shape, 2)}};
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  session.run({step}, feeds);
  for (auto _ : state) session.run({step}, feeds);
  const double bytes = 5.0 * static_cast<double>(c.shape.num_elements()) * sizeof(float);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
  state.SetLabel(c.shape.to_string() + (c.group ? (c.axis == 1 ? " GN NCHW" : " GN NHWC") : " LN"));
}

void BM_NormTrainFused(benchmark::State& state) { run_norm(state, true); }
void BM_NormTrainComposed(benchmark::State& state) { run_norm(state, false); }

}  // namespace

BENCHMARK(BM_BatchNormTrainFused)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_BatchNormTrainComposed)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_BatchNormInferenceFused)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_BatchNormInferenceComposed)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

BENCHMARK(BM_NormTrainFused)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_NormTrainComposed)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
