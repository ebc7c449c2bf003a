// renorm_small_batches: the setting of Ioffe, "Batch Renormalization: Towards Reducing Minibatch
// Dependence in Batch-Normalized Models" (NIPS 2017), in miniature on the digits data. The same
// MLP (64 -> dense 100 -> BN -> relu -> dense 100 -> BN -> relu -> dense 10) is trained three
// ways for the same number of epochs: with minibatches of 4 and plain batch normalization, with
// minibatches of 4 and batch renormalization, and with large minibatches (the baseline). Batch
// statistics of 4 examples are noisy and differ from the moving statistics used at inference;
// renorm trains with the correction r, d towards the moving statistics, clipped to [1/rmax, rmax]
// and [-dmax, dmax], and, as in the paper, the clipping starts at rmax = 1, dmax = 0 (plain BN)
// and is relaxed over training: rmax and dmax are scalar tensors computed from each model's step
// counter. Prints per-epoch held-out accuracy in inference mode and a closing table over --runs
// seeds (the differences are a few held-out examples, so one run proves little).
#include <algorithm>
#include <cstdint>
#include <cstdio>
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
#include "optim/adam.h"
#include "optim/schedules.h"

namespace {

struct Inputs {
  ad::Tensor x, labels, training;
};

struct Config {
  std::string scope{};  // variable scope of the model: "bn_batch4", ...
  std::string label{};  // for the table
  std::int64_t batch_size = 0;
  bool renorm = false;
};

struct Model {
  Config config{};
  ad::Tensor loss{}, accuracy{}, train_op{};
  ad::Tensor rmax{}, dmax{};  // the clipping in force at the current step (renorm only)
  ad::Variable step{};
  std::int64_t steps_per_epoch = 0;
};

// from + (to - from) * clamp((step - begin) / (end - begin), 0, 1): the paper's linear relaxation.
ad::Tensor ramp(const ad::Tensor& step, double begin, double end, double from, double to) {
  ad::Graph& g = step.graph();
  auto t = (step - begin) / (end - begin);
  t = ad::minimum(ad::maximum(t, ad::scalar(g, 0.0, ad::DType::Float32)),
                  ad::scalar(g, 1.0, ad::DType::Float32));
  return t * (to - from) + from;
}

struct RenormSchedule {
  double rmax = 3.0, dmax = 5.0;
  // Fractions of the run: plain BN until `start`, rmax fully relaxed at `rmax_end`, dmax at
  // `dmax_end` (the paper: 5k, 40k and 25k of its ImageNet steps).
  double start = 0.05, rmax_end = 0.3, dmax_end = 0.2;
};

Model build(ad::Graph& g, const Inputs& in, const Config& config, std::int64_t steps_per_epoch,
            const examples::CommonFlags& flags, double momentum, const RenormSchedule& schedule) {
  Model m{.config = config, .steps_per_epoch = steps_per_epoch};
  ad::VariableScope scope(g, config.scope);
  m.step = ad::get_variable(g, "step", {.dtype = ad::DType::Int64, .trainable = false});
  const auto total = static_cast<double>(steps_per_epoch * flags.epochs);
  const auto step = ad::cast(m.step.value(), ad::DType::Float32);

  ad::layers::BatchNormalizationOptions bn{.momentum = momentum, .training = in.training};
  if (config.renorm) {
    m.rmax = ramp(step, schedule.start * total, schedule.rmax_end * total, 1.0, schedule.rmax);
    m.dmax = ramp(step, schedule.start * total, schedule.dmax_end * total, 0.0, schedule.dmax);
    bn.renorm = true;
    bn.renorm_clipping = {{"rmax", m.rmax}, {"rmin", 1.0 / m.rmax}, {"dmax", m.dmax}};
  }
  // Same initial weights in every model: explicit initializer seeds.
  auto seeded = [&](int layer) {
    return ad::initializers::glorot_uniform(static_cast<std::int64_t>(flags.seed * 16) + layer);
  };
  auto h = in.x;
  for (int layer = 0; layer < 2; ++layer) {
    h = ad::layers::dense(h, 100, {.use_bias = false, .kernel_initializer = seeded(layer)});
    h = ad::relu(ad::layers::batch_normalization(h, bn));
  }
  const auto logits = ad::layers::dense(h, 10, {.kernel_initializer = seeded(2)});
  m.loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(in.labels, logits));
  m.accuracy = ad::metrics::accuracy(in.labels, ad::argmax(logits, 1));

  ad::optim::Adam adam(
      {.learning_rate = ad::optim::cosine_decay(flags.learning_rate, m.step.value(), total)});
  const auto minimize = adam.minimize(
      m.loss, m.step,
      ad::variables_in_collection(g, ad::GraphKeys::TRAINABLE_VARIABLES, config.scope + "/"));
  m.train_op = ad::group(
      {minimize, ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS, config.scope + "/"))},
      "train");
  return m;
}

struct Options {
  std::int64_t small_batch = 4;
  double momentum = 0.99;
  RenormSchedule schedule{};
};

// The three models: small batches with BN and with renorm, and the large-batch baseline.
std::vector<Config> model_configs(const Options& o, std::int64_t large_batch) {
  const std::string small = std::to_string(o.small_batch);
  const std::string large = std::to_string(large_batch);
  return {{"bn_batch" + small, "batch " + small + ", batch norm", o.small_batch, false},
          {"renorm_batch" + small, "batch " + small + ", batch renorm", o.small_batch, true},
          {"bn_batch" + large, "batch " + large + ", batch norm", large_batch, false}};
}

// What one model reached at the end of one run.
struct Result {
  double accuracy = 0;    // held-out, inference mode
  double test_loss = 0;   // held-out, inference mode
  double train_loss = 0;  // mean over the last epoch's steps, training mode
  double seconds = 0;
};

// Trains the models of `configs` from `seed` (split, initial weights, batch order) and returns
// their results; `last` saves the checkpoint.
std::vector<Result> run_once(const examples::CommonFlags& f, const Options& o,
                             const std::vector<Config>& configs, std::uint64_t seed,
                             examples::CsvWriter& csv, bool last) {
  const auto data = examples::load_example_data(f.data, 0.2, seed);
  ad::Graph g;
  const Inputs in{ad::placeholder(g, ad::DType::Float32, {-1, data.train.num_features()}, "x"),
                  ad::placeholder(g, ad::DType::Int64, {-1}, "labels"),
                  ad::placeholder(g, ad::DType::Bool, {}, "training")};
  examples::CommonFlags seeded = f;
  seeded.seed = seed;
  std::vector<Model> models;
  for (const auto& config : configs) {
    const ad::data::BatchIterator probe(data.train, {.batch_size = config.batch_size});
    models.push_back(build(g, in, config, probe.num_batches(), seeded, o.momentum, o.schedule));
  }
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  const ad::FeedDict test_feed{{in.x, data.test.features},
                               {in.labels, data.test.labels},
                               {in.training, ad::Array::scalar(false)}};

  std::vector<Result> results;
  for (const auto& m : models) {
    std::printf("%s: %d epochs of %lld steps, Adam %g with cosine decay\n", m.config.label.c_str(),
                f.epochs, static_cast<long long>(m.steps_per_epoch), f.learning_rate);
    const ad::data::BatchIterator batches(data.train,
                                          {.batch_size = m.config.batch_size, .seed = seed});
    examples::Progress progress(f.epochs, batches.num_batches());
    Result result;
    for (int epoch = 0; epoch < f.epochs; ++epoch) {
      for (const auto& batch : batches.epoch(epoch)) {
        const auto out =
            session.run({m.train_op, m.loss}, {{in.x, batch.features},
                                               {in.labels, batch.labels},
                                               {in.training, ad::Array::scalar(true)}});
        progress.step(epoch, batch.labels.size(), out[1].item<float>());
      }
      const auto eval = session.run({m.accuracy, m.loss}, test_feed);
      result = {eval[0].item<float>(), eval[1].item<float>(), progress.epoch_loss(),
                progress.elapsed_seconds()};
      double rmax = 1, dmax = 0;
      if (m.config.renorm) {
        const auto clip = session.run({m.rmax, m.dmax});
        rmax = clip[0].item<float>();
        dmax = clip[1].item<float>();
      }
      csv.row({static_cast<std::int64_t>(seed), m.config.scope, m.config.batch_size, epoch + 1,
               session.value(m.step).item<std::int64_t>(), result.train_loss, result.test_loss,
               result.accuracy, rmax, dmax, result.seconds});
      char summary[128];
      const int used = std::snprintf(summary, sizeof summary,
                                     "train loss %.4f  held-out loss %.4f  accuracy %.4f",
                                     result.train_loss, result.test_loss, result.accuracy);
      if (m.config.renorm) {
        std::snprintf(summary + used, sizeof summary - static_cast<std::size_t>(used),
                      "  rmax %.2f dmax %.2f", rmax, dmax);
      }
      progress.end_epoch(epoch, summary);
    }
    results.push_back(result);
  }
  if (last) examples::save_checkpoint(ad::Saver(g), session, f.checkpoint);
  return results;
}

int run(int argc, char** argv) {
  Options o;
  int runs = 3;
  examples::ExampleFlags flags(
      "renorm_small_batches",
      "Ioffe 2017 in miniature: minibatches of --small-batch with BN and with batch renorm, and a "
      "baseline with minibatches of --batch-size",
      {.epochs = 10, .batch_size = 32, .learning_rate = 1e-3});
  flags.add("small-batch", o.small_batch, "minibatch size of the BN and renorm runs")
      .add("runs", runs, "repeat with seeds seed, seed+1, ... and report mean, min and max")
      .add("momentum", o.momentum, "momentum of the moving statistics (TF convention)")
      .add("rmax", o.schedule.rmax, "final clipping of r to [1/rmax, rmax]")
      .add("dmax", o.schedule.dmax, "final clipping of d to [-dmax, dmax]");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();
  if (o.small_batch < 1) throw boost::program_options::error("--small-batch must be at least 1");
  if (runs < 1) throw boost::program_options::error("--runs must be at least 1");

  examples::CsvWriter csv(f.metrics_csv,
                          {"seed", "model", "batch_size", "epoch", "step", "train_loss",
                           "test_loss", "test_accuracy", "rmax", "dmax", "seconds"},
                          {"seed", "model", "batch_size"});
  const std::vector<Config> configs = model_configs(o, f.batch_size);
  std::vector<std::vector<Result>> all;  // [run][model]
  for (int r = 0; r < runs; ++r) {
    const std::uint64_t seed = f.seed + static_cast<std::uint64_t>(r);
    std::printf("\n== run %d of %d (seed %llu)\n", r + 1, runs,
                static_cast<unsigned long long>(seed));
    all.push_back(run_once(f, o, configs, seed, csv, r + 1 == runs));
  }

  std::printf(
      "\nafter %d epochs, over %d run%s: held-out accuracy and loss in inference mode "
      "(moving statistics), last epoch's training loss (batch statistics)\n",
      f.epochs, runs, runs == 1 ? "" : "s");
  std::printf("%-22s  %8s  %8s  %8s  %9s  %10s\n", "model", "accuracy", "min", "max", "test loss",
              "train loss");
  for (std::size_t i = 0; i < configs.size(); ++i) {
    double sum = 0, low = 1, high = 0, test_loss = 0, train_loss = 0;
    for (const auto& results : all) {
      sum += results[i].accuracy;
      low = std::min(low, results[i].accuracy);
      high = std::max(high, results[i].accuracy);
      test_loss += results[i].test_loss;
      train_loss += results[i].train_loss;
    }
    const auto n = static_cast<double>(all.size());
    std::printf("%-22s  %8.4f  %8.4f  %8.4f  %9.4f  %10.4f\n", configs[i].label.c_str(), sum / n,
                low, high, test_loss / n, train_loss / n);
  }
  std::printf("metrics in %s\n", csv.path().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("renorm_small_batches", [&] { return run(argc, argv); });
}
