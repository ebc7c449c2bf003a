// distributed_throughput: training throughput of data-parallel gradtape over MPI, and the time of
// one allreduce against its size (for the alpha-beta cost model of docs/distributed.md).
//   OMP_NUM_THREADS=1 build/bench/distributed_throughput --model mlp --batch 64
//   OMP_NUM_THREADS=1 mpirun -np 2 build/bench/distributed_throughput --model mlp --batch 64
//   mpirun -np 2 build/bench/distributed_throughput --model allreduce
// Models: "mlp" (bench/mlp_model.h's 784-512-512-10 with batch normalization, Momentum) and
// "convnet" (28x28x1 -> conv 3x3 32 relu, pool -> conv 3x3 64 relu, pool -> dense 128 -> 10).
// Every rank trains on `batch` random examples of its own per step (the per-rank batch), with
// DistributedOptimizer averaging the gradients; rank 0 prints examples per second of the whole
// job and the step time split into compute and communication (time inside collectives).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "distributed/distributed.h"
#include "layers/layers.h"
#include "optim/momentum.h"

namespace dist = ad::distributed;
using Clock = std::chrono::steady_clock;

namespace {

struct Net {
  ad::Tensor x, labels, training, train_op, broadcast;
  std::int64_t inputs = 0;
  std::int64_t parameters = 0;
};

ad::Tensor mlp(const ad::Tensor& x, const ad::Tensor& training) {
  auto h = ad::layers::dense(x, 512, {.name = "fc1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
  h = ad::layers::dense(h, 512, {.name = "fc2"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
  return ad::layers::dense(h, 10, {.name = "fc3"});
}

ad::Tensor convnet(const ad::Tensor& x) {
  auto h = ad::reshape(x, {-1, 28, 28, 1});
  h = ad::layers::conv2d(h, 32, 3, {.padding = "same", .activation = ad::relu, .name = "conv1"});
  h = ad::layers::max_pooling2d(h, 2, 2);
  h = ad::layers::conv2d(h, 64, 3, {.padding = "same", .activation = ad::relu, .name = "conv2"});
  h = ad::layers::max_pooling2d(h, 2, 2);
  h = ad::layers::dense(ad::layers::flatten(h), 128, {.activation = ad::relu, .name = "fc1"});
  return ad::layers::dense(h, 10, {.name = "fc2"});
}

Net build(ad::Graph& g, const std::string& model) {
  g.set_seed(1);
  Net n;
  n.inputs = 784;
  n.x = ad::placeholder(g, ad::DType::Float32, {-1, n.inputs}, "x");
  n.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  n.training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  const auto logits = model == "mlp" ? mlp(n.x, n.training) : convnet(n.x);
  const auto loss =
      ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(n.labels, logits));
  dist::DistributedOptimizer optimizer(std::make_unique<ad::optim::Momentum>(
      ad::optim::MomentumOptions{.learning_rate = 0.01, .momentum = 0.9}));
  n.train_op =
      ad::group({optimizer.minimize(loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
  n.broadcast = dist::broadcast_variables(g, 0);
  for (const auto& var : ad::trainable_variables(g)) n.parameters += var.shape().num_elements();
  return n;
}

int train(const std::string& model, std::int64_t batch, int steps) {
  ad::Graph g;
  const Net n = build(g, model);
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  session.run({n.broadcast});
  std::mt19937 rng(static_cast<unsigned>(17 + dist::rank()));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> features(static_cast<std::size_t>(batch * n.inputs));
  for (auto& v : features) v = normal(rng);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (auto& v : labels) v = static_cast<std::int64_t>(rng() % 10);
  const ad::FeedDict feed = {{n.x, ad::Array::from(features, {batch, n.inputs})},
                             {n.labels, ad::Array::from(labels, {batch})},
                             {n.training, ad::Array::scalar(true)}};
  for (int i = 0; i < 5; ++i) session.run({n.train_op}, feed);  // warm-up: plans, buffers
  dist::barrier("start");
  const auto comm_before = dist::communication_stats();
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) session.run({n.train_op}, feed);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double comm = dist::communication_stats().seconds - comm_before.seconds;
  if (dist::rank() == 0) {
    std::printf(
        "%s: %lld parameters, %d rank(s) x batch %lld, %d steps: %.1f examples/s, step %.2f ms "
        "(compute %.2f ms, communication %.2f ms)\n",
        model.c_str(), static_cast<long long>(n.parameters), dist::size(),
        static_cast<long long>(batch), steps,
        static_cast<double>(batch * dist::size() * steps) / seconds, 1e3 * seconds / steps,
        1e3 * (seconds - comm) / steps, 1e3 * comm / steps);
  }
  return 0;
}

// Median time of one float32 allreduce (mean) of each size, for the alpha-beta fit.
int allreduce_sweep(int reps) {
  for (std::int64_t n = 1; n <= (std::int64_t{1} << 22); n *= 4) {
    ad::Graph g;
    const auto x = ad::placeholder(g, ad::DType::Float32, {n}, "x");
    const auto y = dist::allreduce(x);
    ad::Session session(g);
    const ad::FeedDict feed = {{x, ad::Array::full(ad::DType::Float32, {n}, 1.0)}};
    for (int i = 0; i < 3; ++i) session.run({y}, feed);
    std::vector<double> times;
    for (int i = 0; i < reps; ++i) {
      dist::barrier("sweep");
      const auto start = Clock::now();
      session.run({y}, feed);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    if (dist::rank() == 0) {
      std::printf("allreduce %d ranks %10lld bytes: median %9.1f us  (min %9.1f us)\n",
                  dist::size(), static_cast<long long>(4 * n), 1e6 * times[times.size() / 2],
                  1e6 * times[0]);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "mlp";
  std::int64_t batch = 64;
  int steps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") model = argv[i + 1];
    if (flag == "--batch") batch = std::atoll(argv[i + 1]);
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
  }
  dist::init();
  if (model == "allreduce") return allreduce_sweep(steps);
  if (model != "mlp" && model != "convnet") {
    std::fprintf(stderr, "distributed_throughput: --model is mlp, convnet or allreduce\n");
    return 2;
  }
  return train(model, batch, steps);
}
