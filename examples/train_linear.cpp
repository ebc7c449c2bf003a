// train_linear: softmax regression on the bundled digits data (8x8 images, 10 classes), written the
// TF1 way: placeholders, a loss, ad::gradients, and plain gradient-descent updates via assign_sub.
// Prints the loss and held-out accuracy per epoch; exits with status 1 when the final held-out
// accuracy is below --min-accuracy, so CI can use it as a smoke test.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "autodiff/autodiff.h"
#include "data/loaders.h"

namespace po = boost::program_options;

namespace {

struct Flags {
  int epochs = 20;
  std::int64_t batch_size = 32;
  double learning_rate = 0.5;
  std::uint64_t seed = 1;
  double test_fraction = 0.2;
  double min_accuracy = 0.90;
  std::string data = GRADTAPE_EXAMPLES_DATA_DIR "/digits.csv.gz";
};

// Parses the command line; returns false when --help was asked for.
bool parse_flags(int argc, char** argv, Flags& flags) {
  po::options_description options("train_linear: softmax regression on the digits data");
  options.add_options()("help,h", "show this help")(
      "epochs", po::value(&flags.epochs)->default_value(flags.epochs), "passes over the data")(
      "batch-size", po::value(&flags.batch_size)->default_value(flags.batch_size),
      "examples per step")("learning-rate",
                           po::value(&flags.learning_rate)->default_value(flags.learning_rate),
                           "gradient-descent step size")(
      "seed", po::value(&flags.seed)->default_value(flags.seed), "split and shuffle seed")(
      "test-fraction", po::value(&flags.test_fraction)->default_value(flags.test_fraction, "0.2"),
      "share of the data held out")(
      "min-accuracy", po::value(&flags.min_accuracy)->default_value(flags.min_accuracy, "0.9"),
      "exit with status 1 below this held-out accuracy")(
      "data", po::value(&flags.data)->default_value(flags.data),
      "digits CSV (gzipped or not): 64 pixels 0..16, then the label");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, options), vm);
  if (vm.count("help") != 0) {
    std::cout << options << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

int run(const Flags& flags) {
  const auto all = ad::data::scale_features(ad::data::load_digits_csv(flags.data), 1.0 / 16);
  const auto [train, test] = ad::data::train_test_split(all, flags.test_fraction, flags.seed);
  std::printf("digits: %lld training and %lld held-out examples, %lld features, %d classes\n",
              static_cast<long long>(train.size()), static_cast<long long>(test.size()),
              static_cast<long long>(train.num_features()), train.num_classes);

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
  auto train_op = ad::group({kernel.assign_sub(grads[0] * flags.learning_rate),
                             bias.assign_sub(grads[1] * flags.learning_rate)},
                            "train");

  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  const ad::FeedDict test_feed{{x, test.features}, {labels, test.labels}};
  const ad::data::BatchIterator batches(train,
                                        {.batch_size = flags.batch_size, .seed = flags.seed});

  double test_accuracy = 0.0;
  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < flags.epochs; ++epoch) {
    double loss_sum = 0.0;
    for (const auto& batch : batches.epoch(epoch)) {
      const auto out = session.run({loss, train_op}, {{x, batch.features}, {labels, batch.labels}});
      loss_sum += out[0].item<float>();
    }
    const auto eval = session.run({loss, accuracy}, test_feed);
    test_accuracy = eval[1].item<float>();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf(
        "epoch %3d/%d  train loss %.4f  held-out loss %.4f  held-out accuracy %.4f  %.0f ms\n",
        epoch + 1, flags.epochs, loss_sum / static_cast<double>(batches.num_batches()),
        eval[0].item<float>(), test_accuracy, 1e3 * elapsed.count());
  }
  const bool ok = test_accuracy >= flags.min_accuracy;
  std::printf("held-out accuracy %.4f (floor %.2f): %s\n", test_accuracy, flags.min_accuracy,
              ok ? "ok" : "BELOW THE FLOOR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Flags flags;
    if (!parse_flags(argc, argv, flags)) return 0;
    return run(flags);
  } catch (const po::error& e) {
    std::cerr << "train_linear: " << e.what() << " (see --help)\n";
  } catch (const std::exception& e) {
    std::cerr << "train_linear: " << e.what() << "\n";
  }
  return 2;
}
