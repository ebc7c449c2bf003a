// bn_paper_figure: figure 1 of Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
// Training by Reducing Internal Covariate Shift" (ICML 2015), in miniature on the digits data.
// Two networks with three fully connected hidden layers of 100 sigmoid units, one plain and one
// with batch normalization before each sigmoid, start from the same weights (same seeds) and see
// the same minibatches with the same plain gradient descent. Every --eval-every steps both are
// evaluated on the held-out split (the BN network in inference mode, with its moving statistics),
// and, as in figure 1(b, c), the 15th, 50th and 85th percentiles of one last-layer sigmoid input
// over the held-out examples are recorded. Writes all of it to the metrics CSV and prints a table
// and how many steps each network needs to reach a few accuracies; exits with status 1 unless the
// BN network reaches --target-accuracy in fewer steps (how CI checks the claim on a short run).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "examples/common/checkpoint.h"
#include "examples/common/csv.h"
#include "examples/common/data.h"
#include "examples/common/flags.h"
#include "examples/common/progress.h"
#include "layers/batch_normalization.h"
#include "layers/dense.h"
#include "layers/metrics.h"
#include "optim/gradient_descent.h"

namespace {

struct Network {
  ad::Graph graph;
  ad::Tensor x, labels, training;
  ad::Tensor last_sigmoid_input;  // [batch, 100]: what the paper's figure 1(b, c) follows
  ad::Tensor loss, accuracy, train_op;
};

// The paper's network: 3 x (dense 100 -> [BN] -> sigmoid) -> dense 10. Kernels start from
// N(0, 1/fan_in) with fixed op seeds, so both networks get the same initial weights; with BN the
// dense layers have no bias (BN's beta replaces it), as in the paper.
void build(Network& net, std::int64_t num_features, int num_classes, bool with_bn,
           const examples::CommonFlags& flags, double bn_momentum) {
  ad::Graph& g = net.graph;
  net.x = ad::placeholder(g, ad::DType::Float32, {-1, num_features}, "x");
  net.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  net.training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = net.x;
  for (int layer = 0; layer < 3; ++layer) {
    const auto seed = static_cast<std::int64_t>(flags.seed * 16 + layer);
    const double stddev = 1.0 / std::sqrt(static_cast<double>(h.shape()[1]));
    auto pre =
        ad::layers::dense(h, 100,
                          {.use_bias = !with_bn,
                           .kernel_initializer = ad::initializers::random_normal(0.0, stddev, seed),
                           .name = "fc" + std::to_string(layer + 1)});
    if (with_bn) {
      pre = ad::layers::batch_normalization(pre, {.momentum = bn_momentum,
                                                  .training = net.training,
                                                  .name = "bn" + std::to_string(layer + 1)});
    }
    net.last_sigmoid_input = pre;
    h = ad::sigmoid(pre);
  }
  const auto logits = ad::layers::dense(
      h, num_classes,
      {.kernel_initializer = ad::initializers::random_normal(0.0, 0.1, flags.seed * 16 + 3),
       .name = "logits"});
  net.loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(net.labels, logits));
  net.accuracy = ad::metrics::accuracy(net.labels, ad::argmax(logits, 1));
  ad::optim::GradientDescent sgd({.learning_rate = flags.learning_rate});
  // The train op runs the moving-statistics updates too (UPDATE_OPS; none without BN).
  net.train_op = ad::group(
      {sgd.minimize(net.loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))}, "train");
}

struct Snapshot {
  double accuracy = 0;
  double loss = 0;
  double p15 = 0, p50 = 0, p85 = 0;  // percentiles of one sigmoid input over the held-out set
};

double percentile(std::vector<float> values, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

Snapshot evaluate(ad::Session& session, const Network& net, const ad::data::Dataset& test) {
  const auto out = session.run({net.accuracy, net.loss, net.last_sigmoid_input},
                               {{net.x, test.features},
                                {net.labels, test.labels},
                                {net.training, ad::Array::scalar(false)}});
  // Unit 0 of the last hidden layer: any unit shows the same picture.
  const auto inputs = out[2].data<float>();
  const std::int64_t units = out[2].shape()[1];
  std::vector<float> unit0;
  for (std::int64_t i = 0; i < out[2].shape()[0]; ++i) unit0.push_back(inputs[i * units]);
  return {out[0].item<float>(), out[1].item<float>(), percentile(unit0, 0.15),
          percentile(unit0, 0.50), percentile(unit0, 0.85)};
}

int run(int argc, char** argv) {
  std::int64_t eval_every = 25;
  double target_accuracy = 0.9;
  double bn_momentum = 0.9;
  examples::ExampleFlags flags(
      "bn_paper_figure",
      "Ioffe & Szegedy 2015, figure 1, in miniature: 3 x 100 sigmoid units with and without BN",
      {.epochs = 60, .batch_size = 60, .learning_rate = 1.0});
  flags.add("eval-every", eval_every, "evaluate both networks every this many steps")
      .add("target-accuracy", target_accuracy,
           "BN must reach this held-out accuracy first (else exit 1)")
      .add("bn-momentum", bn_momentum, "momentum of the moving statistics (TF convention)");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();
  if (eval_every < 1) throw boost::program_options::error("--eval-every must be at least 1");

  const auto data = examples::load_example_data(f.data, 0.2, f.seed);
  Network plain, bn;
  build(plain, data.train.num_features(), data.train.num_classes, false, f, bn_momentum);
  build(bn, data.train.num_features(), data.train.num_classes, true, f, bn_momentum);
  ad::Session plain_session(plain.graph), bn_session(bn.graph);
  plain_session.run({ad::global_variables_initializer(plain.graph)});
  bn_session.run({ad::global_variables_initializer(bn.graph)});

  const ad::data::BatchIterator batches(
      data.train, {.batch_size = f.batch_size, .drop_last = true, .seed = f.seed});
  examples::CsvWriter csv(f.metrics_csv,
                          {"step", "accuracy_without_bn", "accuracy_with_bn", "loss_without_bn",
                           "loss_with_bn", "p15_without_bn", "p50_without_bn", "p85_without_bn",
                           "p15_with_bn", "p50_with_bn", "p85_with_bn"});
  std::printf("training both networks: %d epochs of %lld steps, batch %lld, gradient descent %g\n",
              f.epochs, static_cast<long long>(batches.num_batches()),
              static_cast<long long>(f.batch_size), f.learning_rate);

  std::vector<std::pair<std::int64_t, std::pair<Snapshot, Snapshot>>> history;
  auto record = [&](std::int64_t step) {
    const Snapshot a = evaluate(plain_session, plain, data.test);
    const Snapshot b = evaluate(bn_session, bn, data.test);
    csv.row(
        {step, a.accuracy, b.accuracy, a.loss, b.loss, a.p15, a.p50, a.p85, b.p15, b.p50, b.p85});
    history.push_back({step, {a, b}});
  };
  record(0);
  examples::Progress progress(f.epochs, batches.num_batches());
  const auto training_on = ad::Array::scalar(true);
  std::int64_t step = 0;
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    for (const auto& batch : batches.epoch(epoch)) {
      const ad::FeedDict plain_feed{{plain.x, batch.features}, {plain.labels, batch.labels}};
      const auto plain_loss = plain_session.run({plain.train_op, plain.loss}, plain_feed)[1];
      (void)bn_session.run(
          {bn.train_op},
          {{bn.x, batch.features}, {bn.labels, batch.labels}, {bn.training, training_on}});
      // Both networks' examples count; the status line shows the plain network's loss.
      progress.step(epoch, 2 * batch.labels.size(), plain_loss.item<float>());
      if (++step % eval_every == 0) record(step);
    }
    const auto& last = history.back().second;
    char summary[128];
    std::snprintf(summary, sizeof summary, "held-out accuracy without BN %.4f, with BN %.4f",
                  last.first.accuracy, last.second.accuracy);
    progress.end_epoch(epoch, summary);
  }
  if (history.back().first != step) record(step);

  std::printf("\n%8s  %-28s  %-28s\n", "", "without BN", "with BN");
  std::printf("%8s  %8s  %18s  %8s  %18s\n", "step", "accuracy", "sigmoid input p15/50/85",
              "accuracy", "sigmoid input p15/50/85");
  const std::size_t rows = std::min<std::size_t>(8, history.size() - 1);
  for (std::size_t r = 0; r <= rows; ++r) {
    const auto& [at, pair] = history[r * (history.size() - 1) / rows];
    const auto& [a, b] = pair;
    std::printf("%8lld  %8.4f  %5.2f %5.2f %5.2f  %8.4f  %5.2f %5.2f %5.2f\n",
                static_cast<long long>(at), a.accuracy, a.p15, a.p50, a.p85, b.accuracy, b.p15,
                b.p50, b.p85);
  }
  auto first_reaching = [&](bool with_bn, double target) -> std::optional<std::int64_t> {
    for (const auto& [at, pair] : history) {
      if ((with_bn ? pair.second : pair.first).accuracy >= target) return at;
    }
    return std::nullopt;
  };
  auto show = [](std::optional<std::int64_t> s) {
    return s ? std::to_string(*s) : std::string("-");
  };
  std::printf("\nsteps to reach a held-out accuracy (- : not within the run)\n%8s  %10s  %10s\n",
              "accuracy", "without BN", "with BN");
  for (const double target : {0.5, 0.8, 0.9, 0.95}) {
    std::printf("%8.2f  %10s  %10s\n", target, show(first_reaching(false, target)).c_str(),
                show(first_reaching(true, target)).c_str());
  }
  const auto plain_steps = first_reaching(false, target_accuracy);
  const auto bn_steps = first_reaching(true, target_accuracy);
  const bool bn_faster = bn_steps && (!plain_steps || *bn_steps < *plain_steps);
  std::printf("metrics in %s\n", csv.path().c_str());
  examples::save_checkpoint(ad::Saver(bn.graph), bn_session, f.checkpoint);
  std::printf("with BN, held-out accuracy %.2f is reached %s: %s\n", target_accuracy,
              bn_faster ? "in fewer steps" : "NOT in fewer steps", bn_faster ? "ok" : "FAILED");
  return bn_faster ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("bn_paper_figure", [&] { return run(argc, argv); });
}
