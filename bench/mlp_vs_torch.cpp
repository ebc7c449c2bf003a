// Training an MLP side by side with LibTorch: 784-512-512-10, batch normalization after each hidden
// dense layer, relu, softmax cross-entropy, SGD with momentum 0.9, random data, one thread. Each
// side runs in its own forked child (several alternating rounds), which reports training steps per
// second (wall and CPU) and its peak resident memory. Prints a Markdown table.
//
//   mlp_vs_torch [--rounds N] [--seconds S]
#include <omp.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "optim/momentum.h"
#include "side_by_side.h"

namespace {

constexpr std::int64_t kInputs = 784;
constexpr std::int64_t kHidden = 512;
constexpr std::int64_t kClasses = 10;
constexpr int kBatches = 8;  // distinct random batches, cycled
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;

struct Data {
  std::vector<std::vector<float>> features;       // kBatches x [batch, 784]
  std::vector<std::vector<std::int64_t>> labels;  // kBatches x [batch]
};

Data random_data(std::int64_t batch) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::int64_t> label(0, kClasses - 1);
  Data d;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<float> f(static_cast<std::size_t>(batch * kInputs));
    for (auto& v : f) v = normal(rng);
    std::vector<std::int64_t> l(static_cast<std::size_t>(batch));
    for (auto& v : l) v = label(rng);
    d.features.push_back(std::move(f));
    d.labels.push_back(std::move(l));
  }
  return d;
}

// What a child sends back through its pipe.
struct Result {
  double steps = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  double first_loss = 0;
  double last_loss = 0;
  std::int64_t rss_at_start_kib = 0;  // inherited from the parent: libraries loaded, no model
  std::int64_t peak_rss_kib = 0;      // VmHWM at the end
};

// Runs `step` (which returns the loss when asked) for warm-up steps, then for `seconds` of wall
// time, and fills the timing fields.
template <class Step>
void time_training(Step&& step, double seconds, Result& r) {
  r.first_loss = step(0, true);
  for (int i = 1; i < 5; ++i) step(i, false);
  const double c0 = bench::process_cpu_seconds();
  const double t0 = bench::wall_seconds();
  int i = 5;
  while (bench::wall_seconds() - t0 < seconds || i < 25) step(i++, false);
  r.wall_seconds = bench::wall_seconds() - t0;
  r.cpu_seconds = bench::process_cpu_seconds() - c0;
  r.steps = i - 5;
  r.last_loss = step(i, true);
}

// gradtape, written as a user would: layers::dense, batch_normalization with a fed training flag,
// Momentum.minimize grouped with UPDATE_OPS.
Result run_gradtape(std::int64_t batch, double seconds) {
  const Data data = random_data(batch);
  ad::Graph g;
  g.set_seed(1);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, kInputs}, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = ad::layers::dense(x, kHidden, {.name = "fc1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
  h = ad::layers::dense(h, kHidden, {.name = "fc2"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
  auto logits = ad::layers::dense(h, kClasses, {.name = "fc3"});
  auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
  ad::optim::Momentum optimizer({.learning_rate = kLearningRate, .momentum = kMomentum});
  auto train_op =
      ad::group({optimizer.minimize(loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  std::vector<ad::FeedDict> feeds;
  for (int b = 0; b < kBatches; ++b) {
    feeds.push_back({{x, ad::Array::from(data.features[b], {batch, kInputs})},
                     {labels, ad::Array::from(data.labels[b], {batch})},
                     {training, ad::Array::scalar(true)}});
  }
  Result r;
  time_training(
      [&](int i, bool want_loss) {
        const auto& feed = feeds[static_cast<std::size_t>(i % kBatches)];
        if (!want_loss) {
          (void)session.run({train_op}, feed);
          return 0.0;
        }
        return static_cast<double>(session.run({loss, train_op}, feed)[0].item<float>());
      },
      seconds, r);
  return r;
}

// LibTorch, written as a user would: nn::Sequential, optim::SGD, loss.backward().
Result run_torch(std::int64_t batch, double seconds) {
  torch::manual_seed(1);
  const Data data = random_data(batch);
  namespace nn = torch::nn;
  const auto bn = [] { return nn::BatchNorm1d(nn::BatchNorm1dOptions(kHidden).eps(1e-3)); };
  nn::Sequential model(nn::Linear(kInputs, kHidden), bn(), nn::ReLU(), nn::Linear(kHidden, kHidden),
                       bn(), nn::ReLU(), nn::Linear(kHidden, kClasses));
  model->train();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(kLearningRate).momentum(kMomentum));
  std::vector<torch::Tensor> xs, ys;
  for (int b = 0; b < kBatches; ++b) {
    xs.push_back(torch::from_blob(const_cast<float*>(data.features[b].data()), {batch, kInputs},
                                  torch::kFloat32)
                     .clone());
    ys.push_back(
        torch::from_blob(const_cast<std::int64_t*>(data.labels[b].data()), {batch}, torch::kInt64)
            .clone());
  }
  Result r;
  time_training(
      [&](int i, bool want_loss) {
        const auto b = static_cast<std::size_t>(i % kBatches);
        optimizer.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(model->forward(xs[b]), ys[b]);
        loss.backward();
        optimizer.step();
        return want_loss ? loss.item<double>() : 0.0;
      },
      seconds, r);
  return r;
}

// Runs one side in a forked child, so each side's peak memory is its own.
Result in_child(bool torch_side, std::int64_t batch, double seconds) {
  int fds[2];
  if (pipe(fds) != 0) std::exit(2);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Result r;
    r.rss_at_start_kib = bench::proc_status_kib("VmRSS");
    omp_set_num_threads(1);
    torch::set_num_threads(1);
    Result t = torch_side ? run_torch(batch, seconds) : run_gradtape(batch, seconds);
    t.rss_at_start_kib = r.rss_at_start_kib;
    t.peak_rss_kib = bench::proc_status_kib("VmHWM");
    const bool ok = write(fds[1], &t, sizeof t) == static_cast<ssize_t>(sizeof t);
    _exit(ok ? 0 : 3);
  }
  close(fds[1]);
  Result r;
  const bool ok = read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "mlp_vs_torch: the %s child failed\n",
                 torch_side ? "LibTorch" : "gradtape");
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  double seconds = 3.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  std::printf(
      "mlp_vs_torch, %s, load average %s, LibTorch %s, 1 thread each, %d rounds of %.1f s\n",
      bench::today().c_str(), bench::load_average().c_str(), TORCH_VERSION, rounds, seconds);
  std::printf(
      "\n| batch | side | steps/s (wall) | steps/s (CPU) | ratio gradtape/LibTorch (wall / CPU) | "
      "peak RSS MiB | above start MiB | loss first -> last |\n|---:|---|---:|---:|---:|---:|---:|"
      "---|\n");
  std::fflush(stdout);
  for (const std::int64_t batch : {128, 32}) {
    std::vector<double> wall[2], cpu[2];
    Result last[2];
    std::int64_t peak[2] = {0, 0};
    for (int r = 0; r < rounds; ++r) {
      for (int side = 0; side < 2; ++side) {  // 0: LibTorch, 1: gradtape
        const Result res = in_child(side == 0, batch, seconds);
        wall[side].push_back(res.steps / res.wall_seconds);
        cpu[side].push_back(res.steps / res.cpu_seconds);
        peak[side] = std::max(peak[side], res.peak_rss_kib);
        last[side] = res;
      }
    }
    const double torch_wall = bench::median(wall[0]), torch_cpu = bench::median(cpu[0]);
    for (int side = 0; side < 2; ++side) {
      const double w = bench::median(wall[side]), c = bench::median(cpu[side]);
      char ratio[48] = "1 (reference)";
      if (side == 1)
        std::snprintf(ratio, sizeof(ratio), "%.2f / %.2f", w / torch_wall, c / torch_cpu);
      std::printf("| %lld | %s | %.0f | %.0f | %s | %.0f | %.0f | %.3f -> %.3f |\n",
                  static_cast<long long>(batch), side == 0 ? "LibTorch" : "gradtape", w, c, ratio,
                  peak[side] / 1024.0, (peak[side] - last[side].rss_at_start_kib) / 1024.0,
                  last[side].first_loss, last[side].last_loss);
      std::fflush(stdout);
    }
  }
  std::printf(
      "\nsteps/s: median over the rounds; CPU = steps / process CPU time. Peak RSS is the child's "
      "VmHWM, which includes what it inherited from the parent (both libraries loaded, before "
      "either model exists: 'above start' subtracts that). The %d random batches are "
      "cycled, so both sides memorize them: the loss falls from about ln 10 = 2.303.\n",
      kBatches);
  return 0;
}
