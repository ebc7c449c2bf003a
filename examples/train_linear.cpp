// train_linear: softmax regression on the bundled digits data (8x8 images, 10 classes), written the
// TF1 way at the lowest level: placeholders, a loss, ad::gradients, and plain gradient-descent
// updates via assign_sub (no layers, no optimizer classes). Prints the loss and held-out accuracy
// per epoch; exits with status 1 when the final held-out accuracy is below --min-accuracy.
#include <cstdio>

#include "autodiff/autodiff.h"
#include "examples/common/checkpoint.h"
#include "examples/common/csv.h"
#include "examples/common/data.h"
#include "examples/common/flags.h"
#include "examples/common/progress.h"

namespace {

int run(int argc, char** argv) {
  double min_accuracy = 0.9;
  examples::ExampleFlags flags("train_linear", "softmax regression on the digits data",
                               {.epochs = 20, .batch_size = 32, .learning_rate = 0.5});
  flags.add("min-accuracy", min_accuracy, "exit with status 1 below this held-out accuracy");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();
  const auto data = examples::load_example_data(f.data, 0.2, f.seed);
  const auto& train = data.train;

  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, train.num_features()}, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto kernel = ad::Variable::create(g, "linear/kernel", {.shape = {train.num_features(), 10}});
  auto bias = ad::Variable::create(g, "linear/bias", {.shape = {10}});
  auto logits = ad::matmul(x, kernel.value()) + bias.value();
  auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
  auto accuracy =
      ad::reduce_mean(ad::cast(ad::equal(ad::argmax(logits, 1), labels), ad::DType::Float32));

  const auto grads = ad::gradients(loss, {kernel, bias});
  auto train_op = ad::group(
      {kernel.assign_sub(grads[0] * f.learning_rate), bias.assign_sub(grads[1] * f.learning_rate)},
      "train");

  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  const ad::FeedDict test_feed{{x, data.test.features}, {labels, data.test.labels}};
  const ad::data::BatchIterator batches(train, {.batch_size = f.batch_size, .seed = f.seed});
  examples::CsvWriter csv(f.metrics_csv,
                          {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"});
  examples::Progress progress(f.epochs, batches.num_batches());

  double test_accuracy = 0.0;
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out = session.run({loss, train_op}, {{x, batch.features}, {labels, batch.labels}});
      progress.step(epoch, batch.labels.size(), out[0].item<float>());
    }
    const auto eval = session.run({loss, accuracy}, test_feed);
    test_accuracy = eval[1].item<float>();
    csv.row({epoch + 1, progress.epoch_loss(), double{eval[0].item<float>()}, test_accuracy,
             progress.elapsed_seconds()});
    char summary[96];
    std::snprintf(summary, sizeof summary, "train loss %.4f  held-out loss %.4f  accuracy %.4f",
                  progress.epoch_loss(), eval[0].item<float>(), test_accuracy);
    progress.end_epoch(epoch, summary);
  }
  examples::save_checkpoint(ad::Saver(g), session, f.checkpoint);
  const bool ok = test_accuracy >= min_accuracy;
  std::printf("held-out accuracy %.4f (floor %.2f): %s\n", test_accuracy, min_accuracy,
              ok ? "ok" : "BELOW THE FLOOR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("train_linear", [&] { return run(argc, argv); });
}
