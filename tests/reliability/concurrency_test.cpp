// The thread-safety contract under load: one Session run from several threads at once gives every
// thread the same results as a single-threaded run, training steps from several threads lose no
// update, and a reader never sees a half-written variable.
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "optim/adam.h"
#include "optim/gradient_descent.h"
#include "tests/support/gradient_check.h"

namespace {

constexpr int kThreads = 4;
constexpr int kRunsPerThread = 1000;

// Runs body(thread_index) on kThreads threads and joins them. An exception inside a thread is
// counted (Boost.Test's assertions are not thread-safe, so threads only count their failures).
template <class F>
void run_threads(F body) {
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
  for (auto& thread : threads) thread.join();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(concurrency_test)

BOOST_AUTO_TEST_CASE(shared_session_gives_every_thread_the_single_threaded_results) {
  ad::Graph g;
  g.set_seed(7);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 16}, "x");
  auto h = ad::layers::dense(x, 32, {.name = "fc1"});
  h = ad::relu(ad::layers::batch_normalization(h, {.training = false}));
  auto logits = ad::layers::dense(h, 5, {.name = "fc2"});
  auto probabilities = ad::nn::softmax(logits);
  auto total = ad::reduce_sum(probabilities * logits);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});

  // Eight inputs of different batch sizes (so several plans are made and cached concurrently),
  // with their results from a single-threaded run as the reference.
  std::vector<ad::Array> inputs;
  std::vector<std::vector<ad::Array>> expected;
  for (int i = 0; i < 8; ++i) {
    inputs.push_back(
        ad::testing::random_normal({3 + 5 * i, 16}, 50 + i).astype(ad::DType::Float32));
  }
  {
    ad::Session reference(g);
    for (const auto& v : ad::global_variables(g)) reference.set_value(v, s.value(v));
    for (const auto& in : inputs)
      expected.push_back(reference.run({probabilities, total}, {{x, in}}));
  }
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};
  run_threads([&](int t) {
    for (int r = 0; r < kRunsPerThread; ++r) {
      const std::size_t k = static_cast<std::size_t>((t * 3 + r) % 8);
      try {
        const auto out = s.run({probabilities, total}, {{x, inputs[k]}});
        if (!out[0].bitwise_equal(expected[k][0]) || !out[1].bitwise_equal(expected[k][1]))
          ++mismatches;
      } catch (const std::exception&) {
        ++errors;
      }
    }
  });
  BOOST_TEST(mismatches.load() == 0);
  BOOST_TEST(errors.load() == 0);
  BOOST_TEST(s.stats().runs == 1 + kThreads * kRunsPerThread);
  BOOST_TEST(s.stats().plans <= 1 + 8 * 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_training_steps_lose_no_update) {
  ad::Graph g;
  auto c = ad::placeholder(g, ad::DType::Float64, {64}, "c");
  auto w = ad::Variable::create(g, "w",
                                {.shape = {64},
                                 .dtype = ad::DType::Float64,
                                 .initializer = ad::initializers::constant(1000.0)});
  auto step = ad::Variable::create(g, "global_step",
                                   {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  // d loss / d w = c whatever w is, so every step subtracts exactly learning_rate * c = 0.25.
  auto loss = ad::reduce_sum(w.value() * c);
  auto train_op = ad::optim::GradientDescent({.learning_rate = 0.125}).minimize(loss, step);
  auto counter = ad::Variable::create(
      g, "counter", {.shape = {}, .dtype = ad::DType::Float64, .trainable = false});
  auto count_op = counter.assign_add(ad::scalar(g, 1.0, ad::DType::Float64));
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const ad::Array twos = ad::Array::full(ad::DType::Float64, {64}, 2.0);
  std::atomic<int> errors{0};
  run_threads([&](int) {
    for (int r = 0; r < kRunsPerThread; ++r) {
      try {
        s.run({train_op, count_op}, {{c, twos}});
      } catch (const std::exception&) {
        ++errors;
      }
    }
  });
  BOOST_TEST(errors.load() == 0);
  const double expected = 1000.0 - 0.25 * kThreads * kRunsPerThread;
  const auto w_value = s.value(w);
  for (double v : w_value.data<double>()) BOOST_TEST(v == expected);
  BOOST_TEST(s.value(step).item<std::int64_t>() == kThreads * kRunsPerThread);
  BOOST_TEST(s.value(counter).item<double>() == kThreads * kRunsPerThread);
}

BOOST_AUTO_TEST_CASE(concurrent_adam_steps_keep_variables_and_slots_consistent) {
  ad::Graph g;
  g.set_seed(3);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8}, "x");
  auto y = ad::layers::dense(x, 4, {.name = "fc"});
  auto loss = ad::reduce_mean(ad::square(y));
  auto step = ad::Variable::create(g, "global_step",
                                   {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ad::optim::Adam adam({.learning_rate = 1e-3});
  auto train_op = adam.minimize(loss, step);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const auto batch = ad::testing::random_normal({16, 8}, 4).astype(ad::DType::Float32);
  std::atomic<int> errors{0};
  run_threads([&](int) {
    for (int r = 0; r < kRunsPerThread / 4; ++r) {
      try {
        s.run({train_op}, {{x, batch}});
        (void)s.eval(loss, {{x, batch}});
      } catch (const std::exception&) {
        ++errors;
      }
    }
  });
  BOOST_TEST(errors.load() == 0);
  BOOST_TEST(s.value(step).item<std::int64_t>() == kThreads * (kRunsPerThread / 4));
  for (const auto& v : ad::global_variables(g)) {
    const auto value = s.value(v);
    if (value.dtype() != ad::DType::Float32) continue;
    for (float f : value.data<float>()) BOOST_TEST(std::isfinite(f), v.name() << " is not finite");
  }
}

BOOST_AUTO_TEST_CASE(readers_never_see_a_half_written_variable) {
  ad::Graph g;
  constexpr std::int64_t kSize = 1 << 14;
  auto v = ad::Variable::create(g, "v", {.shape = {kSize}, .dtype = ad::DType::Float32});
  auto fill = ad::placeholder(g, ad::DType::Float32, {kSize}, "fill");
  auto assign = v.assign(fill);
  auto read = v.value() * 1.0;
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::atomic<int> errors{0};
  std::thread writer([&] {
    const ad::Array ones = ad::Array::full(ad::DType::Float32, {kSize}, 1.0);
    const ad::Array twos = ad::Array::full(ad::DType::Float32, {kSize}, 2.0);
    while (reads.load() < kThreads) std::this_thread::yield();  // the readers are running
    // Keep writing until the readers have read 100 times during the writes, however the
    // scheduler shares the cores, so the check below always covers overlapping reads and writes.
    const int reads_before = reads.load();
    for (int r = 0; r < 2 * kRunsPerThread || reads.load() < reads_before + 100; ++r) {
      try {
        s.run({assign}, {{fill, r % 2 == 0 ? ones : twos}});
      } catch (const std::exception&) {
        ++errors;
      }
    }
    done = true;
  });
  run_threads([&](int) {
    while (!done) {
      try {
        const auto value = s.eval(read);
        ++reads;
        const auto data = value.data<float>();
        const float first = data[0];
        for (float f : data) {
          if (f != first) {
            ++torn;
            break;
          }
        }
      } catch (const std::exception&) {
        ++errors;
      }
    }
  });
  writer.join();
  BOOST_TEST(torn.load() == 0);
  BOOST_TEST_MESSAGE("reads during the writes: " << reads.load());
  BOOST_TEST(errors.load() == 0);
}

BOOST_AUTO_TEST_CASE(errors_in_one_thread_leave_the_others_running) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {-1}, "x");
  auto y = ad::check_numerics(ad::sqrt(x), "sqrt of a negative");
  ad::Session s(g);
  const auto good = ad::Array::from<double>({4.0, 9.0}, {2});
  const auto bad = ad::Array::from<double>({4.0, -9.0}, {2});
  std::atomic<int> good_results{0};
  std::atomic<int> expected_errors{0};
  std::atomic<int> other{0};
  run_threads([&](int t) {
    for (int r = 0; r < kRunsPerThread; ++r) {
      const bool fail = (t + r) % 2 == 0;
      try {
        const auto out = s.eval(y, {{x, fail ? bad : good}});
        if (!fail && out.data<double>()[1] == 3.0) ++good_results;
        if (fail) ++other;
      } catch (const ad::InvalidArgumentError&) {
        if (fail)
          ++expected_errors;
        else
          ++other;
      } catch (const std::exception&) {
        ++other;
      }
    }
  });
  BOOST_TEST(good_results.load() == kThreads * kRunsPerThread / 2);
  BOOST_TEST(expected_errors.load() == kThreads * kRunsPerThread / 2);
  BOOST_TEST(other.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
