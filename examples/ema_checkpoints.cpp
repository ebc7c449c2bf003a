// ema_checkpoints: a TF1 research program ported as written. A digits MLP trained with Momentum
// and a global step; tf.train.ExponentialMovingAverage of the weights (num_updates = global step)
// applied after each train step; tf.summary scalars and histograms merged and written by a
// FileWriter; a Saver with max_to_keep rotating "<prefix>-<step>" checkpoints; evaluation in a
// separate graph whose variables are restored from the EMA shadows (variables_to_restore) and
// scored with the streaming tf.metrics.accuracy. With --resume it continues from
// latest_checkpoint. It exits with status 1 when a check fails: the rotation (exactly max_to_keep
// checkpoints, the state file naming the newest), the EMA weights restored bitwise, streaming and
// batch accuracy agreeing, the accuracy floor.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "autodiff/autodiff.h"
#include "examples/common/csv.h"
#include "examples/common/data.h"
#include "examples/common/flags.h"
#include "layers/dense.h"
#include "layers/metrics.h"
#include "optim/momentum.h"
#include "optim/moving_averages.h"

namespace {

struct Model {
  ad::Tensor x;
  ad::Tensor labels;
  ad::Tensor logits;
  ad::Tensor loss;
};

// 64 -> dense 64 (relu) -> dense 10, the same names in the training and evaluation graphs.
Model build_model(ad::Graph& g, std::int64_t features, int classes) {
  Model m;
  m.x = ad::placeholder(g, ad::DType::Float32, {-1, features}, "x");
  m.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  const auto h = ad::relu(ad::layers::dense(m.x, 64, {.name = "hidden"}));
  m.logits = ad::layers::dense(h, classes, {.name = "logits"});
  m.loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(m.labels, m.logits));
  return m;
}

struct Checks {
  bool ok = true;
  void expect(bool condition, const std::string& what) {
    std::printf("check: %s: %s\n", what.c_str(), condition ? "ok" : "FAILED");
    ok = ok && condition;
  }
};

struct Flags {
  double min_accuracy = 0.9;
  int max_to_keep = 3;
  double ema_decay = 0.99;
  bool resume = false;
  std::string logdir{};
};

// Trains (resuming from the newest checkpoint when asked) and returns the last checkpoint path.
std::string train(const examples::ExampleData& data, const examples::CommonFlags& f, const Flags& o,
                  const std::string& prefix, Checks& checks) {
  ad::Graph g;
  g.set_seed(static_cast<std::int64_t>(f.seed));
  const Model m = build_model(g, data.train.num_features(), data.train.num_classes);
  const auto global_step = ad::optim::get_or_create_global_step(g);
  ad::optim::Momentum momentum({.learning_rate = f.learning_rate, .momentum = 0.9});
  const auto train_step = momentum.minimize(m.loss, global_step);
  // TF1: with tf.control_dependencies([train_step]): train_op = ema.apply(tf.trainable_variables())
  ad::optim::ExponentialMovingAverage ema(o.ema_decay, {.num_updates = global_step.value()});
  ad::Tensor train_op;
  {
    const ad::ControlDependencies after_step{train_step};
    train_op = ema.apply(ad::trainable_variables(g));
  }
  const auto batch_accuracy = ad::metrics::accuracy(m.labels, ad::argmax(m.logits, 1));
  (void)ad::summary::scalar("loss", m.loss);
  (void)ad::summary::scalar("accuracy", batch_accuracy);
  for (const auto& v : ad::trainable_variables(g)) {
    (void)ad::summary::histogram("weights/" + v.name(), v.value());
    (void)ad::summary::histogram("averages/" + v.name(), ema.average(v).value());
  }
  const auto merged = ad::summary::merge_all(g);
  ad::Saver saver(g, {}, {.max_to_keep = o.max_to_keep});
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});

  const std::string dir = std::filesystem::path(prefix).parent_path().string();
  std::int64_t step = 0;
  if (const auto latest = ad::latest_checkpoint(dir); o.resume && latest) {
    saver.restore(session, *latest);
    step = session.value(global_step).item<std::int64_t>();
    checks.expect(latest->ends_with("-" + std::to_string(step)),
                  "resumed from " + *latest + " at global step " + std::to_string(step));
  }
  const ad::data::BatchIterator batches(data.train, {.batch_size = f.batch_size, .seed = f.seed});
  const std::int64_t first_epoch = step / batches.num_batches();
  ad::summary::FileWriter writer(o.logdir);
  examples::CsvWriter csv(f.metrics_csv, {"epoch", "step", "train_loss", "checkpoint_count"});
  std::string last_path;
  std::vector<ad::Tensor> fetches = {train_op, m.loss};
  fetches.insert(fetches.end(), merged.fetches().begin(), merged.fetches().end());
  for (std::int64_t epoch = first_epoch; epoch < f.epochs; ++epoch) {
    double loss_sum = 0;
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out = session.run(fetches, {{m.x, batch.features}, {m.labels, batch.labels}});
      loss_sum += out[1].item<float>();
      step = session.value(global_step).item<std::int64_t>();
      if (step % 20 == 0) writer.add_summary(merged.serialize(std::span(out).subspan(2)), step);
    }
    last_path = saver.save(session, prefix, global_step);
    const auto kept = saver.last_checkpoints().size();
    csv.row({epoch + 1, step, loss_sum / static_cast<double>(batches.num_batches()),
             static_cast<std::int64_t>(kept)});
    std::printf("epoch %lld: train loss %.4f, saved %s (%zu kept)\n",
                static_cast<long long>(epoch + 1),
                loss_sum / static_cast<double>(batches.num_batches()), last_path.c_str(), kept);
  }
  writer.close();
  return last_path;
}

// Evaluates the EMA weights of `checkpoint` in a fresh evaluation graph.
double evaluate_ema(const examples::ExampleData& data, const std::string& checkpoint, double decay,
                    Checks& checks) {
  ad::Graph g;
  const Model m = build_model(g, data.test.num_features(), data.test.num_classes);
  const ad::optim::ExponentialMovingAverage ema(decay);
  const ad::Saver saver(g, ema.variables_to_restore(g));  // "<var>/ExponentialMovingAverage" -> var
  auto [streaming, update] = ad::metrics::streaming_accuracy(m.labels, ad::argmax(m.logits, 1));
  const auto whole = ad::metrics::accuracy(m.labels, ad::argmax(m.logits, 1));
  ad::Session session(g);
  saver.restore(session, checkpoint);
  session.run({ad::local_variables_initializer(g)});
  bool bitwise = true;
  for (const auto& v : ad::trainable_variables(g)) {
    bitwise = bitwise &&
              session.value(v).bitwise_equal(ad::load_variable(checkpoint, ema.average_name(v)));
  }
  checks.expect(bitwise, "the evaluation weights are the checkpoint's moving averages");
  const ad::data::BatchIterator batches(data.test, {.batch_size = 50, .shuffle = false});
  for (const auto& batch : batches.epoch(0)) {
    (void)session.run({update}, {{m.x, batch.features}, {m.labels, batch.labels}});
  }
  const double streamed = session.eval(streaming).item<float>();
  const double at_once =
      session.eval(whole, {{m.x, data.test.features}, {m.labels, data.test.labels}}).item<float>();
  checks.expect(std::abs(streamed - at_once) <= 1e-6,
                "streaming accuracy over batches " + std::to_string(streamed) +
                    " equals the accuracy of the whole test set " + std::to_string(at_once));
  return streamed;
}

int run(int argc, char** argv) {
  Flags o;
  examples::ExampleFlags flags(
      "ema_checkpoints",
      "an MLP with EMA weights, summaries and rotating checkpoints, ported from TF1",
      {.epochs = 8, .batch_size = 32, .learning_rate = 0.05});
  flags.add("min-accuracy", o.min_accuracy, "exit with status 1 when the EMA accuracy is lower")
      .add("max-to-keep", o.max_to_keep, "checkpoints kept by the Saver")
      .add("ema-decay", o.ema_decay, "ExponentialMovingAverage decay")
      .add("resume", o.resume, "continue from latest_checkpoint of the checkpoint directory")
      .add("logdir", o.logdir, "TensorBoard directory (default: <metrics csv>_logs/train)");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();
  const auto data = examples::load_example_data(f.data, 0.2, f.seed);
  // --checkpoint names the prefix; the checkpoints are "<prefix>-<global step>" beside it.
  const std::string prefix = f.checkpoint;
  const std::string dir = std::filesystem::path(prefix).parent_path().string();
  std::filesystem::create_directories(dir);
  if (o.logdir.empty()) {  // beside the CSV, whose rows go to "<csv>_logs" itself
    o.logdir = std::filesystem::path(f.metrics_csv).replace_extension().string() + "_logs/train";
  }
  if (!o.resume) {  // a fresh run starts from an empty rotation
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(std::filesystem::path(prefix).filename().string() + "-")) {
        std::filesystem::remove(entry.path());  // the state file is rewritten by the first save
      }
    }
  }
  Checks checks;
  const std::string last = train(data, f, o, prefix, checks);
  if (last.empty()) {
    std::printf("nothing to train: the checkpoint is at epoch %d already\n", f.epochs);
  }
  const auto latest = ad::latest_checkpoint(dir);
  checks.expect(latest.has_value() && (last.empty() || *latest == last),
                "latest_checkpoint names the newest checkpoint");
  const auto state = ad::get_checkpoint_state(dir);
  std::size_t on_disk = 0;
  for (const auto& path : state ? state->all_model_checkpoint_paths : std::vector<std::string>{}) {
    on_disk += std::filesystem::exists(path) ? 1 : 0;
  }
  std::size_t files = 0;  // older checkpoints must have been deleted, across restarts too
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string base = std::filesystem::path(prefix).filename().string() + "-";
    files += entry.path().filename().string().starts_with(base) ? 1 : 0;
  }
  const auto expected = static_cast<std::size_t>(std::min(o.max_to_keep, f.epochs));
  checks.expect(files == expected, std::to_string(files) + " checkpoint files in " + dir);
  checks.expect(
      state && state->all_model_checkpoint_paths.size() == expected && on_disk == expected,
      "the state file lists " + std::to_string(expected) + " checkpoints, all on disk");
  const double accuracy = evaluate_ema(data, *latest, o.ema_decay, checks);
  checks.expect(accuracy >= o.min_accuracy, "held-out accuracy with the EMA weights " +
                                                std::to_string(accuracy) + " >= floor " +
                                                std::to_string(o.min_accuracy));
  std::printf("summaries: %s\n", o.logdir.c_str());
  return checks.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("ema_checkpoints", [&] { return run(argc, argv); });
}
