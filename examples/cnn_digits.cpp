// cnn_digits: a small convolutional network with batch normalization on channels_first input,
// as TF's docs describe for Convolution2D with data_format="channels_first": the digits' 8x8
// images as [N, 1, 8, 8], and batch normalization over axis 1 (the channels).
//   conv 3x3 same, 32 filters -> BN(axis=1) -> relu -> max pool 2x2      [N, 32, 4, 4]
//   conv 3x3 same, 64 filters -> BN(axis=1) -> relu -> max pool 2x2      [N, 64, 2, 2]
//   flatten -> dense 10
// The conv kernels carry a small L2 regularizer; the train op minimizes ad::losses::get_total_loss
// (the cross-entropy in the LOSSES collection plus REGULARIZATION_LOSSES), as TF1 programs do.
// A 4-D float32 input normalized over axis 1 is where TF r2.4 takes its fused kernel, so the layer
// follows TF's fused convention (epsilon at least 1.001e-5, unbiased variance in the moving
// statistics); the program prints the configuration each layer resolved. Trains TF1 style
// (training placeholder, UPDATE_OPS with the train op), saves a checkpoint, restores it into a
// fresh session and exits with status 1 when the held-out accuracy is below --min-accuracy.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "autodiff/autodiff.h"
#include "examples/common/checkpoint.h"
#include "examples/common/csv.h"
#include "examples/common/data.h"
#include "examples/common/flags.h"
#include "examples/common/progress.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/flatten.h"
#include "layers/losses.h"
#include "layers/metrics.h"
#include "layers/pooling.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/schedules.h"

namespace {

struct Model {
  ad::Tensor x{}, labels{}, training{}, loss{}, accuracy{}, train_op{};
  ad::Variable global_step{};
  // The object form of the layers, kept to report which path each configuration took.
  std::vector<std::shared_ptr<ad::layers::BatchNormalization>> batch_norms{};
};

// conv (no bias: BN's beta replaces it) -> BN over the channel axis -> relu -> 2x2 max pool.
ad::Tensor conv_block(Model& m, const ad::Tensor& x, std::int64_t filters, const char* name) {
  ad::VariableScope scope(x.graph(), name);
  const auto h = ad::layers::conv2d(x, filters, 3,
                                    {.padding = "same",
                                     .data_format = "channels_first",
                                     .use_bias = false,
                                     .kernel_regularizer = ad::regularizers::l2(1e-4),
                                     .name = "conv"});
  auto bn = std::make_shared<ad::layers::BatchNormalization>(
      ad::layers::BatchNormalizationOptions{.axis = 1, .momentum = 0.9, .name = "bn"});
  m.batch_norms.push_back(bn);
  return ad::layers::max_pooling2d(ad::relu((*bn)(h, m.training)), 2, 2,
                                   {.data_format = "channels_first"});
}

Model build_model(ad::Graph& g, std::int64_t side, int num_classes,
                  const examples::CommonFlags& flags, std::int64_t total_steps) {
  g.set_seed(static_cast<std::int64_t>(flags.seed));
  Model m;
  m.x = ad::placeholder(g, ad::DType::Float32, {-1, side * side}, "x");
  m.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  m.training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = ad::reshape(m.x, {-1, 1, side, side});  // channels_first: [N, C, H, W]
  h = conv_block(m, h, 32, "block1");
  h = conv_block(m, h, 64, "block2");
  h = ad::layers::flatten(h, {.data_format = "channels_first"});
  const auto logits = ad::layers::dense(h, num_classes, {.name = "logits"});
  m.loss = ad::losses::sparse_softmax_cross_entropy(m.labels, logits);  // the batch mean
  m.accuracy = ad::metrics::accuracy(m.labels, ad::argmax(logits, 1));

  m.global_step = ad::optim::get_or_create_global_step(g);
  ad::optim::Adam adam(
      {.learning_rate = ad::optim::cosine_decay(flags.learning_rate, m.global_step.value(),
                                                static_cast<double>(total_steps))});
  m.train_op = ad::group({adam.minimize(ad::losses::get_total_loss(g), m.global_step),
                          ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))},
                         "train");
  return m;
}

void print_batch_norm_configs(const Model& m) {
  for (const auto& bn : m.batch_norms) {
    const auto& c = bn->config();
    std::printf("%s: axis %d of a rank-%d input, parameters %s, %s, epsilon %g, %s gradient\n",
                bn->scope_name().c_str(), c.axes.at(0), c.rank, c.param_shape.to_string().c_str(),
                c.tf_fused ? "TF's fused convention (unbiased variance in moving_variance)"
                           : "TF's composed convention",
                c.epsilon, c.fused_gradient ? "hand-written fused" : "composed");
  }
}

int run(int argc, char** argv) {
  double min_accuracy = 0.96;
  examples::ExampleFlags flags("cnn_digits",
                               "a small conv net with batch normalization on channels_first input",
                               {.epochs = 10, .batch_size = 32, .learning_rate = 0.01});
  flags.add("min-accuracy", min_accuracy,
            "exit with status 1 when the restored model's held-out accuracy is lower");
  if (!flags.parse(argc, argv)) return 0;
  const auto& f = flags.common();

  const auto data = examples::load_example_data(f.data, 0.2, f.seed);
  if (data.image_side == 0) {
    throw ad::ValueError("cnn_digits: the data's features are not a square image");
  }
  const ad::data::BatchIterator batches(data.train, {.batch_size = f.batch_size, .seed = f.seed});
  ad::Graph g;
  const Model m =
      build_model(g, data.image_side, data.train.num_classes, f, f.epochs * batches.num_batches());
  print_batch_norm_configs(m);
  const ad::Saver saver(g);

  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  examples::CsvWriter csv(f.metrics_csv,
                          {"epoch", "step", "train_loss", "test_loss", "test_accuracy", "seconds"});
  std::printf(
      "training: %d epochs of %lld steps, batch %lld, Adam, learning rate %g "
      "cosine-decayed to 0, threads: %d\n",
      f.epochs, static_cast<long long>(batches.num_batches()), static_cast<long long>(f.batch_size),
      f.learning_rate, examples::kernel_threads());
  const ad::FeedDict test_feed{{m.x, data.test.features},
                               {m.labels, data.test.labels},
                               {m.training, ad::Array::scalar(false)}};
  examples::Progress progress(f.epochs, batches.num_batches());
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out = session.run(
          {m.train_op, m.loss},
          {{m.x, batch.features}, {m.labels, batch.labels}, {m.training, ad::Array::scalar(true)}});
      progress.step(epoch, batch.labels.size(), out[1].item<float>());
    }
    const auto eval = session.run({m.loss, m.accuracy}, test_feed);
    const double test_loss = eval[0].item<float>(), test_accuracy = eval[1].item<float>();
    csv.row({epoch + 1, session.value(m.global_step).item<std::int64_t>(), progress.epoch_loss(),
             test_loss, test_accuracy, progress.elapsed_seconds()});
    char summary[96];
    std::snprintf(summary, sizeof summary, "train loss %.4f  |  held-out loss %.4f  accuracy %.4f",
                  progress.epoch_loss(), test_loss, test_accuracy);
    progress.end_epoch(epoch, summary);
  }
  progress.print_summary(csv.path());
  examples::save_checkpoint(saver, session, f.checkpoint);

  ad::Session restored(g);
  saver.restore(restored, f.checkpoint);
  const double accuracy = restored.eval(m.accuracy, test_feed).item<float>();
  const bool ok = accuracy >= min_accuracy;
  std::printf("restored %s into a fresh session: held-out accuracy %.4f (floor %.2f): %s\n",
              f.checkpoint.c_str(), accuracy, min_accuracy, ok ? "ok" : "BELOW THE FLOOR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("cnn_digits", [&] { return run(argc, argv); });
}
