// fashion_cnn: TF's layers-tutorial convnet on Fashion-MNIST (Debian's dataset-fashion-mnist, the
// IDX files as shipped, gzipped), as in the package's benchmark/convnet.py:
//   conv 5x5 same, 32 filters, relu -> max pool 2x2      [N, 14, 14, 32]
//   conv 5x5 same, 64 filters, relu -> max pool 2x2      [N, 7, 7, 64]
//   flatten -> dense 1024, relu -> dropout 0.4 -> dense 10
// With --batch-norm each convolution drops its bias and is followed by batch normalization (TF1
// style: a training placeholder, UPDATE_OPS grouped with the train op) before the relu. Trains
// with Adam and a cosine-decayed learning rate (the tutorial's plain SGD at 0.001 and batch 400
// needs hundreds of epochs), evaluates the 10,000 test images a few times per epoch and prints
// when the test accuracy first reaches --target-accuracy, with the time it took. Saves a
// checkpoint, restores it into a fresh session and exits with status 1 when the test accuracy is
// below --min-accuracy.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "autodiff/autodiff.h"
#include "data/loaders.h"
#include "examples/common/checkpoint.h"
#include "examples/common/csv.h"
#include "examples/common/flags.h"
#include "examples/common/progress.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/losses.h"
#include "layers/metrics.h"
#include "layers/pooling.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/schedules.h"

namespace {

constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";
constexpr std::int64_t kSide = 28;
constexpr std::int64_t kEvalBatch = 500;

struct Options {
  bool batch_norm = false;
  bool channels_first = false;
  std::int64_t train_limit = 0;  // 0: all 60,000
  std::int64_t test_limit = 0;   // 0: all 10,000
  int evals_per_epoch = 2;
  double target_accuracy = 0.0;  // 0: 0.916, or 0.93 with --batch-norm
  double min_accuracy = 0.0;
};

struct Model {
  ad::Tensor x{}, labels{}, training{}, loss{}, correct{}, train_op{};
  ad::Variable global_step{};
};

// conv 5x5 same -> (BN over the channel axis) -> relu -> 2x2 max pool.
ad::Tensor conv_block(const Model& m, const ad::Tensor& x, std::int64_t filters, const Options& o,
                      const char* name) {
  ad::VariableScope scope(x.graph(), name);
  const char* format = o.channels_first ? "channels_first" : "channels_last";
  auto h = ad::layers::conv2d(
      x, filters, 5,
      {.padding = "same", .data_format = format, .use_bias = !o.batch_norm, .name = "conv"});
  if (o.batch_norm) {
    h = ad::layers::batch_normalization(
        h,
        {.axis = o.channels_first ? 1 : 3, .momentum = 0.9, .training = m.training, .name = "bn"});
  }
  return ad::layers::max_pooling2d(ad::relu(h), 2, 2, {.data_format = format});
}

Model build_model(ad::Graph& g, const examples::CommonFlags& flags, const Options& o,
                  std::int64_t total_steps) {
  g.set_seed(static_cast<std::int64_t>(flags.seed));
  Model m;
  m.x = ad::placeholder(g, ad::DType::Float32, {-1, kSide * kSide}, "x");
  m.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  m.training = ad::placeholder(g, ad::DType::Bool, {}, "training");
  auto h = o.channels_first ? ad::reshape(m.x, {-1, 1, kSide, kSide})
                            : ad::reshape(m.x, {-1, kSide, kSide, 1});
  h = conv_block(m, h, 32, o, "block1");
  h = conv_block(m, h, 64, o, "block2");
  h = ad::layers::flatten(h,
                          {.data_format = o.channels_first ? "channels_first" : "channels_last"});
  h = ad::layers::dense(h, 1024, {.activation = ad::relu, .name = "dense"});
  h = ad::layers::dropout(h, {.rate = 0.4, .training = m.training});
  const auto logits = ad::layers::dense(h, 10, {.name = "logits"});
  m.loss = ad::losses::sparse_softmax_cross_entropy(m.labels, logits);
  const auto batch_size = ad::cast(ad::size(m.labels), ad::DType::Float32);
  m.correct = ad::metrics::accuracy(m.labels, ad::argmax(logits, 1)) * batch_size;

  m.global_step = ad::optim::get_or_create_global_step(g);
  ad::optim::Adam adam(
      {.learning_rate = ad::optim::cosine_decay(flags.learning_rate, m.global_step.value(),
                                                static_cast<double>(total_steps))});
  m.train_op = ad::group({adam.minimize(m.loss, m.global_step),
                          ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))},
                         "train");
  return m;
}

ad::data::Dataset load_split(const std::string& dir, const char* prefix, std::int64_t limit) {
  namespace fs = std::filesystem;
  const auto file = [&](const char* kind) {
    const fs::path plain = fs::path(dir) / (std::string(prefix) + kind);
    return fs::exists(plain) ? plain.string() : plain.string() + ".gz";
  };
  auto data = ad::data::load_mnist_idx(file("-images-idx3-ubyte"), file("-labels-idx1-ubyte"));
  data = ad::data::scale_features(data, 1.0 / 255);
  if (limit > 0 && limit < data.size()) {
    // A fixed random subset (for short runs), so every class is present.
    auto order = ad::data::permutation(data.size(), 7);
    order.resize(static_cast<std::size_t>(limit));
    data = data.rows(order);
  }
  return data;
}

// Mean loss and accuracy over `test`, in batches small enough to keep the activations modest.
std::pair<double, double> evaluate(ad::Session& session, const Model& m,
                                   const ad::data::Dataset& test) {
  const ad::data::BatchIterator batches(test, {.batch_size = kEvalBatch, .shuffle = false});
  double loss = 0.0, correct = 0.0;
  for (const auto& batch : batches.epoch(0)) {
    const auto out = session.run(
        {m.loss, m.correct},
        {{m.x, batch.features}, {m.labels, batch.labels}, {m.training, ad::Array::scalar(false)}});
    loss += out[0].item<float>() * static_cast<double>(batch.labels.size());
    correct += out[1].item<float>();
  }
  const auto n = static_cast<double>(test.size());
  return {loss / n, correct / n};
}

int run(int argc, char** argv) {
  Options o;
  examples::ExampleFlags flags("fashion_cnn", "TF's layers-tutorial convnet on Fashion-MNIST",
                               {.epochs = 12, .batch_size = 64, .learning_rate = 1e-3});
  flags.add("batch-norm", o.batch_norm, "batch normalization after each convolution")
      .add("channels-first", o.channels_first, "NCHW activations instead of NHWC")
      .add("train-limit", o.train_limit, "train on a fixed subset of this many images (0: all)")
      .add("test-limit", o.test_limit, "evaluate on a fixed subset of this many images (0: all)")
      .add("evals-per-epoch", o.evals_per_epoch, "test-set evaluations per epoch")
      .add("target-accuracy", o.target_accuracy,
           "report the time to this test accuracy (0: 0.916, or 0.93 with --batch-norm)")
      .add("min-accuracy", o.min_accuracy,
           "exit with status 1 when the restored model's test accuracy is lower");
  if (!flags.parse(argc, argv)) return 0;
  auto f = flags.common();
  if (f.data.empty() || f.data == examples::default_data_path()) f.data = kFashionDir;
  if (o.target_accuracy <= 0.0) o.target_accuracy = o.batch_norm ? 0.93 : 0.916;

  const auto train = load_split(f.data, "train", o.train_limit);
  const auto test = load_split(f.data, "t10k", o.test_limit);
  std::printf("data: %s: %lld training and %lld test images of 28x28\n", f.data.c_str(),
              static_cast<long long>(train.size()), static_cast<long long>(test.size()));
  const ad::data::BatchIterator batches(train, {.batch_size = f.batch_size, .seed = f.seed});
  const std::int64_t steps = batches.num_batches();
  ad::Graph g;
  const Model m = build_model(g, f, o, f.epochs * steps);
  const ad::Saver saver(g);
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  examples::CsvWriter csv(f.metrics_csv,
                          {"epoch", "step", "train_loss", "test_loss", "test_accuracy", "seconds"});
  std::printf(
      "training: %s%s, %s, %d epochs of %lld steps, batch %lld, Adam, learning rate %g "
      "cosine-decayed to 0, threads: %d\n",
      "tutorial convnet", o.batch_norm ? " + batch norm" : "", o.channels_first ? "NCHW" : "NHWC",
      f.epochs, static_cast<long long>(steps), static_cast<long long>(f.batch_size),
      f.learning_rate, examples::kernel_threads());

  examples::Progress progress(f.epochs, steps);
  const std::int64_t eval_every = std::max<std::int64_t>(steps / std::max(o.evals_per_epoch, 1), 1);
  double reached_at = -1.0, last_accuracy = 0.0;
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    std::int64_t index = 0;
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out = session.run(
          {m.train_op, m.loss},
          {{m.x, batch.features}, {m.labels, batch.labels}, {m.training, ad::Array::scalar(true)}});
      progress.step(epoch, batch.labels.size(), out[1].item<float>());
      if (++index % eval_every != 0 && index != steps) continue;
      const auto [test_loss, accuracy] = evaluate(session, m, test);
      last_accuracy = accuracy;
      const double epochs_done = epoch + static_cast<double>(index) / static_cast<double>(steps);
      csv.row({epochs_done, session.value(m.global_step).item<std::int64_t>(),
               progress.epoch_loss(), test_loss, accuracy, progress.elapsed_seconds()});
      if (reached_at < 0.0 && accuracy >= o.target_accuracy) {
        reached_at = progress.elapsed_seconds();
        std::printf("reached test accuracy %.4f >= %.3f after %.2f epochs, %.0f s\n", accuracy,
                    o.target_accuracy, epochs_done, reached_at);
      }
    }
    char summary[96];
    std::snprintf(summary, sizeof summary, "train loss %.4f  |  test accuracy %.4f",
                  progress.epoch_loss(), last_accuracy);
    progress.end_epoch(epoch, summary);
  }
  progress.print_summary(csv.path());
  if (reached_at < 0.0) std::printf("test accuracy never reached %.3f\n", o.target_accuracy);
  examples::save_checkpoint(saver, session, f.checkpoint);

  ad::Session restored(g);
  saver.restore(restored, f.checkpoint);
  const double accuracy = evaluate(restored, m, test).second;
  const bool ok = accuracy >= o.min_accuracy;
  std::printf("restored %s into a fresh session: test accuracy %.4f (floor %.3f): %s\n",
              f.checkpoint.c_str(), accuracy, o.min_accuracy, ok ? "ok" : "BELOW THE FLOOR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("fashion_cnn", [&] { return run(argc, argv); });
}
