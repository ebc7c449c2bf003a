// Training convnets side by side with LibTorch, batch 64 of 1x28x28 random images, NCHW and NHWC
// (LibTorch: channels_last memory format), 1 and 2 threads:
//   small    conv3x3 1->32 + BN + relu, conv3x3 32->64 + BN + relu, global average pool,
//            dense 64->10, SGD with momentum 0.9
//   fashion  fashion_cnn --batch-norm: conv5x5 1->32 + BN + relu + pool 2x2, conv5x5 32->64 + BN +
//            relu + pool 2x2, dense 3136->1024 + relu, dropout 0.4, dense 10, SGD with momentum
// Each side runs in its own forked child (alternating rounds), which reports training steps per
// second of wall time and of CPU time. GFLOP/s counts the multiply-adds of the convolutions and
// dense layers (forward, weight gradient, and input gradient except for the first layer), and is
// set beside a plain sgemm (OpenBLAS, 1024^3) timed in the same run with the same thread count: the
// practical ceiling. Prints a Markdown table.
//
//   cnn_vs_torch [--rounds N] [--seconds S]
#include <omp.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cnn_model.h"
#include "side_by_side.h"

extern "C" {
void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int threads);
}

namespace {

using bench::cnn::Data;
using bench::cnn::GradtapeNet;
using bench::cnn::kBatch;
using bench::cnn::kBatches;
using bench::cnn::kClasses;
using bench::cnn::kLearningRate;
using bench::cnn::kMomentum;
using bench::cnn::kSide;
using bench::cnn::Net;
using bench::cnn::net_name;
using bench::cnn::random_data;
using bench::cnn::step_flops;

torch::nn::Sequential torch_net(Net net) {
  namespace nn = torch::nn;
  const bool small = net == Net::kSmall;
  const std::int64_t k = small ? 3 : 5;
  const auto conv = [&](std::int64_t in, std::int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, k).padding(k / 2).bias(false));
  };
  const auto bn = [](std::int64_t c) {
    return nn::BatchNorm2d(nn::BatchNorm2dOptions(c).eps(1e-3).momentum(0.1));
  };
  if (small) {
    return nn::Sequential(conv(1, 32), bn(32), nn::ReLU(), conv(32, 64), bn(64), nn::ReLU(),
                          nn::AdaptiveAvgPool2d(1), nn::Flatten(), nn::Linear(64, kClasses));
  }
  return nn::Sequential(conv(1, 32), bn(32), nn::ReLU(), nn::MaxPool2d(2), conv(32, 64), bn(64),
                        nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(3136, 1024),
                        nn::ReLU(), nn::Dropout(0.4), nn::Linear(1024, kClasses));
}

// What a child sends back through its pipe.
struct Result {
  double steps_per_second = 0;      // wall time
  double steps_per_cpu_second = 0;  // process CPU time
  double first_loss = 0;
  double last_loss = 0;
  double sgemm_gflops = 0;
};

template <class Step>
void time_training(Step&& step, double seconds, Result& r) {
  r.first_loss = step(0, true);
  for (int i = 1; i < 3; ++i) step(i, false);
  const double c0 = bench::process_cpu_seconds();
  const double t0 = bench::wall_seconds();
  int i = 3;
  while (bench::wall_seconds() - t0 < seconds || i < 8) step(i++, false);
  r.steps_per_second = (i - 3) / (bench::wall_seconds() - t0);
  r.steps_per_cpu_second = (i - 3) / (bench::process_cpu_seconds() - c0);
  r.last_loss = step(i, true);
}

Result run_torch(Net net, bool nchw, double seconds) {
  torch::manual_seed(1);
  const Data data = random_data();
  auto model = torch_net(net);
  const auto format = nchw ? torch::MemoryFormat::Contiguous : torch::MemoryFormat::ChannelsLast;
  model->to(torch::kFloat32);
  if (!nchw) {
    for (auto& p : model->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(format));
    }
  }
  model->train();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(kLearningRate).momentum(kMomentum));
  std::vector<torch::Tensor> xs, ys;
  for (int b = 0; b < kBatches; ++b) {
    auto& image = const_cast<std::vector<float>&>(data.images[static_cast<std::size_t>(b)]);
    auto& label = const_cast<std::vector<std::int64_t>&>(data.labels[static_cast<std::size_t>(b)]);
    xs.push_back(torch::from_blob(image.data(), {kBatch, 1, kSide, kSide}).contiguous(format));
    ys.push_back(torch::from_blob(label.data(), {kBatch}, torch::kInt64).clone());
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

Result run_gradtape(Net net, bool nchw, double seconds) {
  GradtapeNet model(net, nchw);
  Result r;
  time_training([&](int i, bool want_loss) { return model.step(i, want_loss); }, seconds, r);
  return r;
}

// OpenBLAS sgemm, 1024 x 1024 x 1024: GFLOP per second of process CPU time (median).
double sgemm_gflops(int threads) {
  openblas_set_num_threads(threads);
  constexpr int n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  const auto t = bench::time_interleaved({[&] {
                                           cblas_sgemm(101, 111, 111, n, n, n, 1.0f, a.data(), n,
                                                       b.data(), n, 0.0f, c.data(), n);
                                         }},
                                         5, 0.2);
  return 2.0 * n * n * n / t[0].cpu / 1e9;
}

// Runs one side (0: LibTorch, 1: gradtape, 2: sgemm) in a forked child with `threads` threads.
Result in_child(int side, Net net, bool nchw, int threads, double seconds) {
  int fds[2];
  if (pipe(fds) != 0) std::exit(2);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    omp_set_num_threads(threads);
    ad::set_num_threads(threads);
    torch::set_num_threads(threads);
    Result r;
    if (side == 0) r = run_torch(net, nchw, seconds);
    if (side == 1) r = run_gradtape(net, nchw, seconds);
    if (side == 2) r.sgemm_gflops = sgemm_gflops(threads);
    const bool ok = write(fds[1], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
    _exit(ok ? 0 : 3);
  }
  close(fds[1]);
  Result r;
  const bool ok = read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "cnn_vs_torch: the %s child failed\n",
                 side == 0 ? "LibTorch" : "gradtape");
    std::exit(1);
  }
  return r;
}

std::string spread(const std::vector<double>& v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.2f (%.2f-%.2f)", bench::median(v),
                *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
  return text;
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
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) setenv("OMP_WAIT_POLICY", "passive", 1);
  std::printf("cnn_vs_torch, %s, load average %s, LibTorch %s, batch %lld, %d rounds of %.1f s\n",
              bench::today().c_str(), bench::load_average().c_str(), TORCH_VERSION,
              static_cast<long long>(kBatch), rounds, seconds);
  std::printf(
      "\n| net | layout | threads | LibTorch steps/s | gradtape steps/s | ratio (wall) | ratio "
      "(CPU time) | epoch CPU-s LibTorch / gradtape | GFLOP per CPU-s LibTorch / gradtape / "
      "sgemm |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);
  for (const int threads : {1, 2}) {
    const double sgemm = in_child(2, Net::kSmall, true, threads, 0).sgemm_gflops;
    for (const Net net : {Net::kSmall, Net::kFashion}) {
      for (const bool nchw : {true, false}) {
        std::vector<double> wall[2], cpu[2], ratio_wall, ratio_cpu;
        for (int r = 0; r < rounds; ++r) {
          for (int side = 0; side < 2; ++side) {
            const Result res = in_child(side, net, nchw, threads, seconds);
            wall[side].push_back(res.steps_per_second);
            cpu[side].push_back(res.steps_per_cpu_second);
          }
          ratio_wall.push_back(wall[1].back() / wall[0].back());
          ratio_cpu.push_back(cpu[1].back() / cpu[0].back());
        }
        const double t = bench::median(cpu[0]), g = bench::median(cpu[1]);
        const double flops = step_flops(net) / 1e9;
        std::printf("| %s | %s | %d | %s | %s | %s | %s | %.0f / %.0f | %.1f / %.1f / %.1f |\n",
                    net_name(net), nchw ? "NCHW" : "NHWC", threads, spread(wall[0]).c_str(),
                    spread(wall[1]).c_str(), spread(ratio_wall).c_str(), spread(ratio_cpu).c_str(),
                    938 / t, 938 / g, flops * t, flops * g, sgemm);
        std::fflush(stdout);
      }
    }
  }
  std::printf(
      "\nsteps/s (wall time) and the ratios gradtape/LibTorch: median (min-max) over the rounds, "
      "each round running both sides back to back. CPU-time figures divide by the process's CPU "
      "time instead (all threads), which a busy machine distorts less. An epoch is 938 steps. "
      "GFLOP: %.2f (small) and %.2f (Fashion) per step; sgemm: OpenBLAS 1024^3 in the same run.\n",
      step_flops(Net::kSmall) / 1e9, step_flops(Net::kFashion) / 1e9);
  return 0;
}
