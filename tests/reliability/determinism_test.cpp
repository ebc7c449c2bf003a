// Determinism: for a fixed graph seed, a small batch-norm model gives bit-for-bit the same forward
// values, gradients and variables after N training steps in two fresh runs and with 1, 2 or 3
// threads (set process-wide with ad::set_num_threads or per session with
// SessionOptions::intra_op_parallelism_threads); so do the large reductions and batch-norm
// statistics on their own, and a small convnet whose float32 convolutions run through oneDNN.

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "optim/adam.h"
#include "tests/support/gradient_check.h"

namespace {

// Everything a run produced, in a fixed order.
struct Trace {
  std::vector<std::string> names;
  std::vector<ad::Array> values;
  void add(std::string name, const ad::Array& value) {
    names.push_back(std::move(name));
    values.push_back(value.clone());
  }
};

// Big enough that the elementwise, reduction and batch-norm kernels take their parallel paths.
constexpr std::int64_t kBatch = 512;
constexpr std::int64_t kFeatures = 64;
constexpr std::int64_t kHidden = 128;
constexpr int kClasses = 10;
constexpr int kSteps = 5;

ad::Array to_float(const ad::Array& a) { return a.astype(ad::DType::Float32); }

ad::Array batch_features(std::uint64_t step) {
  return to_float(ad::testing::random_normal({kBatch, kFeatures}, 100 + step, 0.5, 2.0));
}

ad::Array batch_labels(std::uint64_t step) {
  const auto u = ad::testing::random_array({kBatch}, 200 + step, 0.0, kClasses);
  std::vector<std::int64_t> labels;
  for (double v : u.data<double>()) labels.push_back(static_cast<std::int64_t>(v));
  return ad::Array::from(labels, {kBatch});
}

std::string str_step(int step, const std::string& what) {
  return "step " + std::to_string(step) + " " + what;
}

// How a run gets its thread count.
enum class ThreadsFrom { kProcess, kSession };

// Builds the model in a fresh graph (graph seed fixed), trains kSteps Adam steps with the BN
// updates, and records the loss and gradients of every step and every variable at the end. With
// ThreadsFrom::kSession the process-wide count is 1 and the session asks for `threads`.
Trace train_once(int threads, ThreadsFrom from = ThreadsFrom::kProcess) {
  ad::set_num_threads(from == ThreadsFrom::kProcess ? threads : 1);
  ad::Graph g;
  g.set_seed(1234);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, kFeatures}, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto h = ad::layers::dense(x, kHidden, {.name = "fc1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = true}));
  h = ad::layers::dropout(h, {.rate = 0.2, .training = true});
  auto logits = ad::layers::dense(h, kClasses, {.name = "fc2"});
  auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
  const auto vars = ad::trainable_variables(g);
  std::vector<ad::GradTarget> targets(vars.begin(), vars.end());
  const auto grads = ad::gradients(loss, targets);
  ad::optim::Adam adam({.learning_rate = 1e-2});
  auto train_op =
      ad::group({adam.minimize(loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});

  ad::Session s(g, {.intra_op_parallelism_threads = from == ThreadsFrom::kSession ? threads : 0});
  s.run({ad::global_variables_initializer(g)});
  Trace trace;
  for (int step = 0; step < kSteps; ++step) {
    const ad::FeedDict feeds = {{x, batch_features(step)}, {labels, batch_labels(step)}};
    std::vector<ad::Tensor> fetches = {loss};
    fetches.insert(fetches.end(), grads.begin(), grads.end());
    // Forward values and gradients, then the training step (dropout draws a new mask per run, from
    // the graph seed and the run counter, so both runs see the same masks).
    const auto out = s.run(fetches, feeds);
    for (std::size_t i = 0; i < out.size(); ++i) {
      trace.add(str_step(step, i == 0 ? "loss" : "grad " + vars[i - 1].name()), out[i]);
    }
    s.run({train_op}, feeds);
  }
  for (const auto& v : ad::global_variables(g)) trace.add(v.name(), s.value(v));
  return trace;
}

void check_identical(const Trace& a, const Trace& b) {
  BOOST_TEST_REQUIRE(a.names == b.names);
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    BOOST_TEST(a.values[i].bitwise_equal(b.values[i]), a.names[i] << " differs");
  }
}

// Restores the thread count the suite started with, whatever a case set.
struct ThreadCountGuard {
  int saved = ad::num_threads();
  ~ThreadCountGuard() { ad::set_num_threads(saved); }
};

// A small convnet (float32 convolutions run through oneDNN): the loss, every gradient and the
// variables after two Momentum steps, for `batch` images of 12x12 in the given layout.
Trace conv_trace(int threads, bool nchw, std::int64_t batch) {
  ad::set_num_threads(threads);
  ad::Graph g;
  g.set_seed(77);
  const char* format = nchw ? "channels_first" : "channels_last";
  const ad::Shape shape = nchw ? ad::Shape{batch, 3, 12, 12} : ad::Shape{batch, 12, 12, 3};
  auto x = ad::placeholder(g, ad::DType::Float32, shape, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {batch}, "labels");
  auto h = ad::layers::conv2d(x, 16, 3, {.padding = "same", .data_format = format, .name = "c1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.axis = nchw ? 1 : 3, .training = true}));
  h = ad::layers::max_pooling2d(h, 2, 2, {.data_format = format});
  h = ad::layers::conv2d(
      h, 32, 3,
      {.strides = 2, .padding = "same", .data_format = format, .dilation_rate = 2, .name = "c2"});
  h = ad::layers::flatten(h, {.data_format = format});
  auto logits = ad::layers::dense(h, kClasses, {.name = "fc"});
  auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
  const auto vars = ad::trainable_variables(g);
  std::vector<ad::GradTarget> targets(vars.begin(), vars.end());
  targets.emplace_back(x);
  const auto grads = ad::gradients(loss, targets);
  ad::optim::Adam adam({.learning_rate = 1e-2});
  auto train_op = adam.minimize(loss);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  Trace trace;
  for (int step = 0; step < 2; ++step) {
    const auto u = ad::testing::random_array({batch}, 300 + step, 0.0, kClasses);
    std::vector<std::int64_t> classes;
    for (double v : u.data<double>()) classes.push_back(static_cast<std::int64_t>(v));
    const ad::FeedDict feeds = {
        {x, to_float(ad::testing::random_normal(shape, 400 + step, 0.0, 1.0))},
        {labels, ad::Array::from(classes, {batch})}};
    std::vector<ad::Tensor> fetches = {loss};
    fetches.insert(fetches.end(), grads.begin(), grads.end());
    const auto out = s.run(fetches, feeds);
    for (std::size_t i = 0; i < out.size(); ++i) {
      trace.add(str_step(step, i == 0 ? "loss" : "grad " + std::to_string(i)), out[i]);
    }
    s.run({train_op}, feeds);
  }
  for (const auto& v : ad::global_variables(g)) trace.add(v.name(), s.value(v));
  return trace;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(determinism_test)

BOOST_AUTO_TEST_CASE(onednn_convolutions_do_not_depend_on_the_thread_count) {
  const ThreadCountGuard guard;
  // 64 images: 8 full chunks; 13: chunks of 2 and a last one of 1 (a second primitive).
  for (const std::int64_t batch : {64, 13}) {
    for (const bool nchw : {false, true}) {
      BOOST_TEST_CONTEXT("batch " << batch << (nchw ? " NCHW" : " NHWC")) {
        const Trace one = conv_trace(1, nchw, batch);
        check_identical(one, conv_trace(1, nchw, batch));
        check_identical(one, conv_trace(2, nchw, batch));
        check_identical(one, conv_trace(3, nchw, batch));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(training_is_bitwise_identical_across_runs_and_thread_counts) {
  const ThreadCountGuard guard;
  const Trace first = train_once(1);
  const Trace again = train_once(1);
  const Trace two_threads = train_once(2);
  BOOST_TEST(first.values.size() > 2 * kSteps);
  // The model really trains (a trace of constants would pass trivially).
  const auto loss_at = [&](int step) {
    const auto it = std::find(first.names.begin(), first.names.end(), str_step(step, "loss"));
    return first.values[static_cast<std::size_t>(it - first.names.begin())].item<float>();
  };
  BOOST_TEST(loss_at(kSteps - 1) < loss_at(0));
  check_identical(first, again);
  check_identical(first, two_threads);
  check_identical(first, train_once(3));
}

BOOST_AUTO_TEST_CASE(training_through_sessions_with_their_own_thread_counts_is_bitwise_identical) {
  const ThreadCountGuard guard;
  const Trace one = train_once(1);
  check_identical(one, train_once(2, ThreadsFrom::kSession));
  check_identical(one, train_once(3, ThreadsFrom::kSession));
  BOOST_TEST(ad::num_threads() == 1);  // the session's count did not leak into the process
}

BOOST_AUTO_TEST_CASE(large_reductions_and_moments_do_not_depend_on_the_thread_count) {
  const ThreadCountGuard guard;
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, -1}, "x");
  auto total = ad::reduce_sum(x);
  auto column_means = ad::reduce_mean(x, {0});
  auto row_max = ad::reduce_max(x, {1});
  auto [mean, variance] = ad::moments(x, {0});
  auto lse = ad::reduce_logsumexp(x, {1});
  auto product = ad::matmul(x, x, /*transpose_a=*/true);
  const std::vector<ad::Tensor> fetches = {total,    column_means, row_max, mean,
                                           variance, lse,          product};
  const auto value = to_float(ad::testing::random_normal({4096, 96}, 9, 3.0, 5.0));
  ad::Session s(g);
  ad::set_num_threads(1);
  const auto one = s.run(fetches, {{x, value}});
  for (const int threads : {2, 3}) {
    ad::set_num_threads(threads);
    const auto many = s.run(fetches, {{x, value}});
    for (std::size_t i = 0; i < fetches.size(); ++i) {
      BOOST_TEST(one[i].bitwise_equal(many[i]), "fetch " << i << " (" << fetches[i].name()
                                                         << ") differs with " << threads
                                                         << " threads");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
