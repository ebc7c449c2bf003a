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
#include <string>
#include <vector>

#include "mlp_model.h"
#include "side_by_side.h"

namespace {

using bench::mlp::Data;
using bench::mlp::GradtapeMlp;
using bench::mlp::kBatches;
using bench::mlp::kClasses;
using bench::mlp::kHidden;
using bench::mlp::kInputs;
using bench::mlp::kLearningRate;
using bench::mlp::kMomentum;
using bench::mlp::random_data;

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

Result run_gradtape(std::int64_t batch, double seconds) {
  GradtapeMlp model(batch);
  Result r;
  time_training([&](int i, bool want_loss) { return model.step(i, want_loss); }, seconds, r);
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
    const std::int64_t rss_at_start_kib = bench::proc_status_kib("VmRSS");
    omp_set_num_threads(1);
    ad::set_num_threads(1);
    torch::set_num_threads(1);
    Result t = torch_side ? run_torch(batch, seconds) : run_gradtape(batch, seconds);
    t.rss_at_start_kib = rss_at_start_kib;
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
