// Batch normalization side by side with LibTorch, in one process, on identical float32 inputs, one
// thread on both sides: training forward+backward (gradtape: one Session::run of a group of y, dx,
// dgamma, dbeta and the moving-statistics updates; LibTorch: torch::batch_norm and
// torch::autograd::grad) and inference forward, for gradtape's fused and composed (fused=false)
// paths, against the machine's copy bandwidth measured in the same run; then layer normalization
// over the last axis (torch::layer_norm + autograd::grad against ad::layers::layer_normalization,
// fused and composed) on (256,1024) and (64,768) training steps. Prints a Markdown table.
//
//   batch_norm_vs_torch [--rounds N] [--only SUBSTRING]
#include <omp.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/batch_normalization.h"
#include "layers/normalization.h"
#include "side_by_side.h"

namespace {

constexpr double kEpsilon = 1e-3;  // TF's default; at least 1.001e-5, so TF's fused rule keeps it

struct Case {
  std::string name;
  std::vector<std::int64_t> dims;  // gradtape's (and the data's) layout
  int axis;                        // gradtape's channel axis
  bool channels_last;              // torch sees NCHW dims with channels_last strides
};

const std::vector<Case> kCases = {
    {"NCHW (32,64,56,56)", {32, 64, 56, 56}, 1, false},
    {"NHWC (32,56,56,64)", {32, 56, 56, 64}, 3, true},
    {"(256,1024)", {256, 1024}, 1, false},
    {"(64,256)", {64, 256}, 1, false},
};

std::vector<float> random_vector(std::int64_t n, std::uint32_t seed, float mean, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = normal(rng);
  return v;
}

// A torch tensor holding a copy of `data` laid out as the case's gradtape array: for NHWC, an NCHW
// tensor with channels_last strides (the same bytes in the same order).
torch::Tensor to_torch(const std::vector<float>& data, const Case& c) {
  auto t = torch::from_blob(const_cast<float*>(data.data()), c.dims, torch::kFloat32).clone();
  return c.channels_last ? t.permute({0, 3, 1, 2}) : t;
}

// The tensor's values in the case's gradtape layout (NHWC order for channels_last), as doubles.
std::vector<double> from_torch(const torch::Tensor& t, const Case& c) {
  auto u = (c.channels_last && t.dim() == 4 ? t.permute({0, 2, 3, 1}) : t)
               .to(torch::kFloat64)
               .contiguous();
  return {u.data_ptr<double>(), u.data_ptr<double>() + u.numel()};
}

// max |value - reference| / max |reference|: the error of a float32 result against the float64
// reference, on the scale of that output (dgamma sums N*H*W terms, so it is far larger than dx).
double scaled_error(const std::vector<double>& reference, const std::vector<double>& value) {
  if (reference.size() != value.size()) return INFINITY;
  double error = 0, scale = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    error = std::max(error, std::abs(value[i] - reference[i]));
    scale = std::max(scale, std::abs(reference[i]));
  }
  return error / std::max(scale, 1e-30);
}

// The gradtape side for one case: a graph with one batch-norm layer, its session and run step.
struct Gradtape {
  Gradtape(const Case& c, bool training, bool fused, const std::vector<float>& x_values,
           const std::vector<float>& dy_values, const std::vector<float>& params) {
    const ad::Shape shape(c.dims);
    x = ad::placeholder(graph, ad::DType::Float32, shape, "x");
    dy = ad::placeholder(graph, ad::DType::Float32, shape, "dy");
    ad::layers::BatchNormalization bn({.axis = c.axis, .epsilon = kEpsilon, .fused = fused});
    y = bn(x, training);
    feeds = {{x, ad::Array::from(x_values, shape)}};
    fetches = {y};
    if (training) {
      const auto grads = ad::gradients({y}, {x, bn.gamma(), bn.beta()}, {dy});
      fetches.insert(fetches.end(), grads.begin(), grads.end());
      auto parts = fetches;
      for (const auto& update : graph.get_collection(ad::GraphKeys::UPDATE_OPS)) {
        parts.push_back(update);
      }
      step = ad::group(parts);
      feeds.emplace_back(dy, ad::Array::from(dy_values, shape));
    } else {
      step = ad::group({y});
    }
    session.run({ad::global_variables_initializer(graph)});
    const std::int64_t channels = c.dims[static_cast<std::size_t>(c.axis)];
    const ad::Shape param_shape{channels};
    const auto slice = [&](int k) {
      return ad::Array::from(
          std::vector<float>(params.begin() + k * channels, params.begin() + (k + 1) * channels),
          param_shape);
    };
    session.set_value(bn.gamma(), slice(0));
    session.set_value(bn.beta(), slice(1));
    session.set_value(bn.moving_mean(), slice(2));
    session.set_value(bn.moving_variance(), slice(3));
  }
  void run() { (void)session.run({step}, feeds); }

  ad::Graph graph;
  ad::Tensor x, dy, y, step;
  std::vector<ad::Tensor> fetches;  // y, then dx, dgamma, dbeta in training
  ad::FeedDict feeds;
  ad::Session session{graph};
};

struct Row {
  std::string shape, work, side;
  bench::Timing timing;
  double bytes = 0;
  double reference_wall = 0;  // LibTorch's time for the same work (0 on LibTorch's rows)
  double reference_cpu = 0;
  double error = -1;  // scaled_error against float64, worst output (-1: not compared)
};

void print_header() {
  std::printf(
      "\n| shape | work | side | wall us | CPU us | ratio to LibTorch (wall / CPU) | effective "
      "GB/s (CPU) | of copy bw | error vs float64 "
      "|\n|---|---|---|---:|---:|---:|---:|---:|---:|\n");
}

void print_row(const Row& r, const bench::CopyBandwidth& copy) {
  const double gbs = r.bytes / r.timing.cpu / 1e9;
  char ratio[64] = "1 (reference)";
  if (r.reference_wall > 0) {
    std::snprintf(ratio, sizeof(ratio), "%.2f / %.2f", r.timing.wall / r.reference_wall,
                  r.timing.cpu / r.reference_cpu);
  }
  char diff[32] = "-";
  if (r.error >= 0) std::snprintf(diff, sizeof(diff), "%.1e", r.error);
  std::printf("| %s | %s | %s | %.1f | %.1f | %s | %.1f | %.0f%% | %s |\n", r.shape.c_str(),
              r.work.c_str(), r.side.c_str(), r.timing.wall * 1e6, r.timing.cpu * 1e6, ratio, gbs,
              100.0 * r.bytes / r.timing.cpu / copy.best_cpu(), diff);
  std::fflush(stdout);
}

// Layer norm over the last axis, one training step (y, dx, dgamma, dbeta), side by side.
void layer_norm_rows(const std::string& only, int rounds, const bench::CopyBandwidth& copy) {
  const std::vector<std::vector<std::int64_t>> shapes{{256, 1024}, {64, 768}};
  for (const auto& dims : shapes) {
    const std::string name = "LN (" + std::to_string(dims[0]) + "," + std::to_string(dims[1]) + ")";
    if (!only.empty() && name.find(only) == std::string::npos) continue;
    const std::int64_t n = dims[0] * dims[1];
    const std::int64_t width = dims[1];
    const auto x_values = random_vector(n, 1, 0.5f, 2.0f);
    const auto dy_values = random_vector(n, 2, 0.0f, 1.0f);
    const auto params = random_vector(2 * width, 3, 1.0f, 0.2f);
    const auto blob = [&](const float* p, std::vector<std::int64_t> shape) {
      return torch::from_blob(const_cast<float*>(p), shape, torch::kFloat32).clone();
    };
    auto x = blob(x_values.data(), dims).requires_grad_(true);
    auto dy = blob(dy_values.data(), dims);
    auto gamma = blob(params.data(), {width}).requires_grad_(true);
    auto beta = blob(params.data() + width, {width}).requires_grad_(true);
    std::vector<torch::Tensor> torch_out;
    const auto torch_step = [&] {
      auto y = torch::layer_norm(x, {width}, gamma, beta, kEpsilon);
      auto grads = torch::autograd::grad({y}, {x, gamma, beta}, {dy});
      torch_out = {y.detach(), grads[0], grads[1], grads[2]};
    };
    struct Side {
      ad::Graph graph;
      std::vector<ad::Tensor> fetches;
      ad::Tensor step;
      ad::FeedDict feeds;
      std::unique_ptr<ad::Session> session;
    };
    const auto make_side = [&](Side& side, bool fused) {
      const ad::Shape shape(dims);
      auto xt = ad::placeholder(side.graph, ad::DType::Float32, shape, "x");
      auto dyt = ad::placeholder(side.graph, ad::DType::Float32, shape, "dy");
      const auto init = [&](std::int64_t k) {
        return ad::initializers::constant(ad::Array::from(
            std::vector<float>(params.begin() + k * width, params.begin() + (k + 1) * width),
            ad::Shape{width}));
      };
      auto y = ad::layers::layer_normalization(xt, {.epsilon = kEpsilon,
                                                    .beta_initializer = init(1),
                                                    .gamma_initializer = init(0),
                                                    .fused = fused});
      const auto vars = ad::trainable_variables(side.graph);
      const auto grads = ad::gradients({y}, {xt, vars[0], vars[1]}, {dyt});
      side.fetches = {y, grads[0], grads[1], grads[2]};
      side.step = ad::group(side.fetches);
      side.feeds = {{xt, ad::Array::from(x_values, shape)},
                    {dyt, ad::Array::from(dy_values, shape)}};
      side.session = std::make_unique<ad::Session>(side.graph);
      side.session->run({ad::global_variables_initializer(side.graph)});
    };
    Side fused, composed;
    make_side(fused, true);
    make_side(composed, false);
    std::vector<std::vector<double>> reference;
    {
      auto xd = x.detach().to(torch::kFloat64).requires_grad_(true);
      auto gd = gamma.detach().to(torch::kFloat64).requires_grad_(true);
      auto bd = beta.detach().to(torch::kFloat64).requires_grad_(true);
      auto yd = torch::layer_norm(xd, {width}, gd, bd, kEpsilon);
      std::vector<torch::Tensor> outs{yd.detach()};
      for (auto& g : torch::autograd::grad({yd}, {xd, gd, bd}, {dy.to(torch::kFloat64)}))
        outs.push_back(g);
      for (auto& t : outs) {
        auto u = t.contiguous();
        reference.emplace_back(u.data_ptr<double>(), u.data_ptr<double>() + u.numel());
      }
    }
    torch_step();
    double error_torch = 0;
    for (std::size_t f = 0; f < reference.size(); ++f) {
      auto u = torch_out[f].to(torch::kFloat64).contiguous();
      error_torch = std::max(
          error_torch,
          scaled_error(reference[f], {u.data_ptr<double>(), u.data_ptr<double>() + u.numel()}));
    }
    const auto error_of = [&](Side& side) {
      const auto values = side.session->run(side.fetches, side.feeds);
      double m = 0;
      for (std::size_t f = 0; f < values.size(); ++f) {
        const auto v = values[f].data<float>();
        m = std::max(m, scaled_error(reference[f], std::vector<double>(v.begin(), v.end())));
      }
      return m;
    };
    const double error_fused = error_of(fused);
    const double error_composed = error_of(composed);
    const auto timings = bench::time_interleaved(
        {torch_step, [&] { (void)fused.session->run({fused.step}, fused.feeds); },
         [&] { (void)composed.session->run({composed.step}, composed.feeds); }},
        rounds, 0.02);
    const double bytes = 5.0 * static_cast<double>(n) * sizeof(float);
    const auto row = [&](const char* side, const bench::Timing& t, double diff) {
      const bool reference_row = &t == &timings[0];
      print_row({name, "train fwd+bwd", side, t, bytes, reference_row ? 0 : timings[0].wall,
                 reference_row ? 0 : timings[0].cpu, diff},
                copy);
    };
    row("LibTorch layer_norm + autograd::grad", timings[0], error_torch);
    row("gradtape layer_normalization fused", timings[1], error_fused);
    row("gradtape layer_normalization composed (fused=false)", timings[2], error_composed);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 15;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (flag == "--only") only = argv[i + 1];
  }
  omp_set_num_threads(1);
  ad::set_num_threads(1);
  torch::set_num_threads(1);
  torch::set_num_interop_threads(1);

  const auto copy = bench::measure_copy_bandwidth();
  std::printf("batch_norm_vs_torch, %s, load average %s, LibTorch %s, 1 thread each\n",
              bench::today().c_str(), bench::load_average().c_str(), TORCH_VERSION);
  std::printf(
      "copy bandwidth (bytes read + written per second, 128 MiB): memcpy %.1f GB/s wall, %.1f "
      "GB/s CPU; vectorized loop %.1f GB/s wall, %.1f GB/s CPU\n",
      copy.memcpy_wall / 1e9, copy.memcpy_cpu / 1e9, copy.loop_wall / 1e9, copy.loop_cpu / 1e9);
  std::fflush(stdout);

  print_header();
  for (const auto& c : kCases) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    std::int64_t n = 1;
    for (auto d : c.dims) n *= d;
    const std::int64_t channels = c.dims[static_cast<std::size_t>(c.axis)];
    const auto x_values = random_vector(n, 1, 0.5f, 2.0f);
    const auto dy_values = random_vector(n, 2, 0.0f, 1.0f);
    auto params = random_vector(4 * channels, 3, 1.0f, 0.2f);  // gamma, beta, mean, variance
    for (std::int64_t k = 3 * channels; k < 4 * channels; ++k) params[k] = std::abs(params[k]);
    const auto param = [&](int k) {
      return torch::from_blob(params.data() + k * channels, {channels}, torch::kFloat32).clone();
    };

    for (const bool training : {true, false}) {
      // LibTorch: the autograd path users write, and its kernels called directly (no autograd).
      auto x = to_torch(x_values, c);
      auto dy = to_torch(dy_values, c);
      auto gamma = param(0), beta = param(1);
      auto running_mean = param(2), running_var = param(3);
      auto x_grad = x.detach().requires_grad_(true);
      auto gamma_grad = gamma.detach().requires_grad_(true);
      auto beta_grad = beta.detach().requires_grad_(true);
      std::vector<torch::Tensor> torch_out;
      const auto torch_autograd = [&] {
        if (training) {
          auto y = torch::batch_norm(x_grad, gamma_grad, beta_grad, running_mean, running_var, true,
                                     0.01, kEpsilon, false);
          auto grads = torch::autograd::grad({y}, {x_grad, gamma_grad, beta_grad}, {dy});
          torch_out = {y.detach(), grads[0], grads[1], grads[2]};
        } else {
          const torch::NoGradGuard no_grad;
          torch_out = {torch::batch_norm(x, gamma, beta, running_mean, running_var, false, 0.01,
                                         kEpsilon, false)};
        }
      };
      const auto torch_kernels = [&] {
        const torch::NoGradGuard no_grad;
        auto [y, mean, invstd] = at::native_batch_norm(x, gamma, beta, running_mean, running_var,
                                                       training, 0.01, kEpsilon);
        if (training) {
          auto grads = at::native_batch_norm_backward(dy, x, gamma, running_mean, running_var, mean,
                                                      invstd, true, kEpsilon, {true, true, true});
          (void)grads;
        }
      };
      Gradtape fused(c, training, true, x_values, dy_values, params);
      Gradtape composed(c, training, false, x_values, dy_values, params);

      // Accuracy, from the initial state on every side (before any moving-statistics update),
      // against LibTorch in float64 on the same values.
      std::vector<std::vector<double>> reference;
      {
        const auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
        auto xd = d(x).requires_grad_(training), gd = d(gamma).requires_grad_(training),
             bd = d(beta).requires_grad_(training);
        auto yd = torch::batch_norm(xd, gd, bd, d(running_mean), d(running_var), training, 0.01,
                                    kEpsilon, false);
        std::vector<torch::Tensor> outs{yd.detach()};
        if (training) {
          for (auto& g : torch::autograd::grad({yd}, {xd, gd, bd}, {d(dy)})) outs.push_back(g);
        }
        for (const auto& t : outs) reference.push_back(from_torch(t, c));
      }
      torch_autograd();
      double error_torch = 0;
      for (std::size_t f = 0; f < reference.size(); ++f) {
        error_torch =
            std::max(error_torch, scaled_error(reference[f], from_torch(torch_out[f], c)));
      }
      const auto error_of = [&](Gradtape& g) {
        const auto values = g.session.run(g.fetches, g.feeds);
        double m = 0;
        for (std::size_t f = 0; f < values.size(); ++f) {
          const auto v = values[f].data<float>();
          m = std::max(m, scaled_error(reference[f], std::vector<double>(v.begin(), v.end())));
        }
        return m;
      };
      const double error_fused = error_of(fused);
      const double error_composed = error_of(composed);
      // Both sides keep updating their moving statistics while timed, as a training step does.
      const auto timings = bench::time_interleaved(
          {torch_autograd, torch_kernels, [&] { fused.run(); }, [&] { composed.run(); }}, rounds,
          0.02);
      const double bytes = (training ? 5.0 : 2.0) * static_cast<double>(n) * sizeof(float);
      const std::string work = training ? "train fwd+bwd" : "inference fwd";
      const auto row = [&](const char* side, const bench::Timing& t, double diff) {
        const bool reference = &t == &timings[0];
        print_row({c.name, work, side, t, bytes, reference ? 0 : timings[0].wall,
                   reference ? 0 : timings[0].cpu, diff},
                  copy);
      };
      row(training ? "LibTorch batch_norm + autograd::grad" : "LibTorch batch_norm (NoGradGuard)",
          timings[0], error_torch);
      row("LibTorch native_batch_norm kernels, no autograd", timings[1], -1);
      row("gradtape fused", timings[2], error_fused);
      row("gradtape composed (fused=false)", timings[3], error_composed);
    }
  }
  layer_norm_rows(only, rounds, copy);
  std::printf(
      "\nwall/CPU: median per iteration over %d interleaved rounds. Effective bandwidth = bytes "
      "that must move (forward reads x, writes y; backward reads x and dy, writes dx) / CPU time; "
      "'of copy bw' divides it by the faster copy's CPU rate (%.1f GB/s). Tensors of 1 MiB or less "
      "stay in cache, so they can exceed the copy rate. Error: max |result - float64 LibTorch| / "
      "max |float64 LibTorch| over y (and dx, dgamma, dbeta in training), the worst output.\n",
      rounds, copy.best_cpu() / 1e9);
  return 0;
}
