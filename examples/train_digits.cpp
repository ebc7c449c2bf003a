// train_digits: the README's main example. A multilayer perceptron with batch normalization,
// 64 -> dense 128 -> BN -> relu -> dense 64 -> BN -> relu -> dense 10, trained on the bundled
// digits data the TF1 way: placeholders, a boolean `training` placeholder fed on every run,
// UPDATE_OPS (the moving-statistics updates) grouped with Adam's train op, a global step.
// At the end it saves a checkpoint, restores it into a fresh Session and evaluates the held-out
// split in inference mode (moving statistics); it exits with status 1 when that accuracy is below
// --min-accuracy, which is how CI uses it.
#include <cstdint>
#include <cstdio>

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
#include "optim/optimizer.h"
#include "optim/schedules.h"

namespace {

struct Model {
  ad::Tensor x;         // Float32 [batch, features]
  ad::Tensor labels;    // Int64 [batch]
  ad::Tensor training;  // Bool scalar: batch statistics (true) or moving statistics (false)
  ad::Tensor loss;      // mean cross-entropy of the batch
  ad::Tensor accuracy;  // share of the batch classified correctly
  ad::Tensor train_op;  // one Adam step and the moving-statistics updates
  ad::Variable global_step;
};

// dense (no bias: batch normalization's beta takes its place) -> batch normalization -> relu.
ad::Tensor dense_bn_relu(const ad::Tensor& x, std::int64_t units, const ad::Tensor& training,
                         const char* name) {
  ad::VariableScope scope(x.graph(), name);
  const auto h = ad::layers::dense(x, units, {.use_bias = false, .name = "dense"});
  return ad::relu(ad::layers::batch_normalization(
      h, {.momentum = 0.9, .training = training, .name = "batch_normalization"}));
}

// `total_steps` sets the learning-rate schedule: a half cosine from --learning-rate down to 0 over
// the run, so short and long runs alike end with small, stable steps.
Model build_model(ad::Graph& g, std::int64_t num_features, int num_classes,
                  const examples::CommonFlags& flags, std::int64_t total_steps) {
  g.set_seed(static_cast<std::int64_t>(flags.seed));  // seeds the weight initializers
  Model m;
  m.x = ad::placeholder(g, ad::DType::Float32, {-1, num_features}, "x");
  m.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  m.training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = dense_bn_relu(m.x, 128, m.training, "block1");
  h = dense_bn_relu(h, 64, m.training, "block2");
  const auto logits = ad::layers::dense(h, num_classes, {.name = "logits"});
  m.loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(m.labels, logits));
  m.accuracy = ad::metrics::accuracy(m.labels, ad::argmax(logits, 1));

  m.global_step = ad::optim::get_or_create_global_step(g);
  const auto learning_rate = ad::optim::cosine_decay(flags.learning_rate, m.global_step.value(),
                                                     static_cast<double>(total_steps));
  ad::optim::Adam adam({.learning_rate = learning_rate});
  // As in TF1, the moving statistics only change when the UPDATE_OPS run: group them with the
  // train op (ad::layers::check_update_ops below would name them otherwise).
  m.train_op = ad::group({adam.minimize(m.loss, m.global_step),
                          ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))},
                         "train");
  return m;
}

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
};

// Loss and accuracy over a whole dataset in inference mode (moving statistics).
Evaluation evaluate(ad::Session& session, const Model& m, const ad::data::Dataset& data) {
  const auto out = session.run(
      {m.loss, m.accuracy},
      {{m.x, data.features}, {m.labels, data.labels}, {m.training, ad::Array::scalar(false)}});
  return {out[0].item<float>(), out[1].item<float>()};
}

int run(int argc, char** argv) {
  double min_accuracy = 0.96;
  double test_fraction = 0.2;
  examples::ExampleFlags flags("train_digits",
                               "an MLP with batch normalization on the digits data (TF1 style)",
                               {.epochs = 20, .batch_size = 32, .learning_rate = 0.01});
  flags
      .add("min-accuracy", min_accuracy,
           "exit with status 1 when the restored model's held-out accuracy is lower")
      .add("test-fraction", test_fraction, "share of the data held out (seeded split)");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();

  const auto data = examples::load_example_data(f.data, test_fraction, f.seed);
  ad::Graph g;
  const ad::data::BatchIterator batches(data.train, {.batch_size = f.batch_size, .seed = f.seed});
  const Model m = build_model(g, data.train.num_features(), data.train.num_classes, f,
                              f.epochs * batches.num_batches());
  const ad::Saver saver(g);  // every global variable: weights, moving statistics, Adam's slots

  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  examples::CsvWriter csv(f.metrics_csv, {"epoch", "step", "train_loss", "train_accuracy",
                                          "test_loss", "test_accuracy", "seconds"});
  std::printf(
      "training: %d epochs of %lld steps, batch %lld, Adam, learning rate %g cosine-decayed to 0, "
      "threads: %d\n",
      f.epochs, static_cast<long long>(batches.num_batches()), static_cast<long long>(f.batch_size),
      f.learning_rate, examples::kernel_threads());

  examples::Progress progress(f.epochs, batches.num_batches());
  const auto training_on = ad::Array::scalar(true);
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    double correct = 0;
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out =
          session.run({m.train_op, m.loss, m.accuracy},
                      {{m.x, batch.features}, {m.labels, batch.labels}, {m.training, training_on}});
      correct += out[2].item<float>() * static_cast<double>(batch.labels.size());
      progress.step(epoch, batch.labels.size(), out[1].item<float>());
    }
    const double train_loss = progress.epoch_loss();
    const double train_accuracy = correct / static_cast<double>(data.train.size());
    const Evaluation held_out = evaluate(session, m, data.test);
    const auto step = session.value(m.global_step).item<std::int64_t>();
    csv.row({epoch + 1, step, train_loss, train_accuracy, held_out.loss, held_out.accuracy,
             progress.elapsed_seconds()});
    char summary[160];
    std::snprintf(summary, sizeof summary,
                  "train loss %.4f  accuracy %.4f  |  held-out loss %.4f  accuracy %.4f",
                  train_loss, train_accuracy, held_out.loss, held_out.accuracy);
    progress.end_epoch(epoch, summary);
  }
  if (const auto report = ad::layers::check_update_ops(session, g); !report.message.empty()) {
    std::printf("warning: %s\n", report.message.c_str());
  }
  progress.print_summary(csv.path());
  examples::save_checkpoint(saver, session, f.checkpoint);

  // What a separate evaluation program would do: a fresh session holding nothing but the
  // checkpoint's values, run in inference mode.
  ad::Session restored(g);
  saver.restore(restored, f.checkpoint);
  const Evaluation final_eval = evaluate(restored, m, data.test);
  const bool ok = final_eval.accuracy >= min_accuracy;
  std::printf(
      "restored %s into a fresh session: held-out loss %.4f, accuracy %.4f (%lld of %lld) "
      "(floor %.2f): %s\n",
      f.checkpoint.c_str(), final_eval.loss, final_eval.accuracy,
      static_cast<long long>(final_eval.accuracy * static_cast<double>(data.test.size()) + 0.5),
      static_cast<long long>(data.test.size()), min_accuracy, ok ? "ok" : "BELOW THE FLOOR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("train_digits", [&] { return run(argc, argv); });
}
