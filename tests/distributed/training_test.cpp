// Data-parallel training on 1, 2 and 3 ranks (CTest runs this suite alone and under mpirun -np 2
// and 3): each rank trains a small MLP on its shard of every global batch with
// DistributedOptimizer, and also, locally and without any collective, the same MLP on the whole
// global batch (the reference: one process with the batch of all ranks). For 20 steps the
// outputs, the reduced gradients and the variables after each step must equal the reference's
// (relative 1e-12 in float64, 1e-5 in float32, normwise: max|a - b| <= tol * max|b|), and every
// variable must be bitwise the same on every rank. Splits: equal batches, unequal ones (5 and 3
// examples, and 0 on a third rank) and one rank holding the whole batch.
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/constraints.h"
#include "autodiff/graph.h"
#include "autodiff/initializers.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/saver.h"
#include "autodiff/session.h"
#include "data/dataset.h"
#include "distributed/checkpoint.h"
#include "distributed/communicator.h"
#include "distributed/optimizer.h"
#include "layers/dense.h"
#include "optim/momentum.h"
#include "tests/distributed/distributed_test_util.h"

namespace dist = ad::distributed;
using ad::testing::MpiFixture;
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

namespace {

constexpr std::int64_t kSeed = 100;

// n examples of 4 features with 3 classes given by a fixed rule of the features.
ad::data::Dataset toy_data(std::int64_t n) {
  std::vector<float> x;
  std::vector<std::int64_t> y;
  for (std::int64_t i = 0; i < n; ++i) {
    double score = 0;
    for (int j = 0; j < 4; ++j) {
      const double v = std::sin(0.9 * static_cast<double>(i) + 1.7 * j);
      x.push_back(static_cast<float>(v));
      score += (j + 1) * v;
    }
    y.push_back(score > 1 ? 2 : (score > -1 ? 1 : 0));
  }
  return {
      .features = ad::Array::from(x, {n, 4}), .labels = ad::Array::from(y, {n}), .num_classes = 3};
}

enum class Mode { kReference, kMeanOfRanks, kShareOfGlobalMean };

struct Model {
  ad::Tensor features;
  ad::Tensor labels;
  ad::Tensor logits;
  std::vector<ad::Tensor> grads;  // in the order of `vars`
  std::vector<ad::Variable> vars;
  ad::Tensor train_op;
  ad::Tensor broadcast;  // distributed modes: the root's initial values
  int num_buckets = 0;
};

// 4 -> 6 (tanh) -> 3 MLP trained by Momentum; the second kernel has a max-norm constraint, so
// the constraint after each update is part of what must agree. In distributed modes every rank
// initializes with its own seed and takes rank 0's values through broadcast_variables; the
// reference initializes with rank 0's seed.
Model build(ad::Graph& graph, ad::DType dtype, Mode mode, std::int64_t fusion_bytes = 64 << 20) {
  Model m;
  const std::int64_t seed = kSeed + (mode == Mode::kReference ? 0 : dist::rank());
  m.features = ad::placeholder(graph, ad::DType::Float32, {-1, 4}, "features");
  m.labels = ad::placeholder(graph, ad::DType::Int64, {-1}, "labels");
  const auto x = ad::cast(m.features, dtype);
  const auto h =
      ad::layers::dense(x, 6,
                        {.activation = ad::tanh,
                         .kernel_initializer = ad::initializers::glorot_uniform(seed),
                         .bias_initializer = ad::initializers::random_normal(0.0, 0.1, seed + 7),
                         .name = "fc1"});
  m.logits = ad::layers::dense(h, 3,
                               {.kernel_initializer = ad::initializers::glorot_uniform(seed + 3),
                                .kernel_constraint = ad::constraints::max_norm(0.6),
                                .name = "fc2"});
  const auto per_example = ad::nn::sparse_softmax_cross_entropy_with_logits(m.labels, m.logits);
  auto momentum = std::make_unique<ad::optim::Momentum>(
      ad::optim::MomentumOptions{.learning_rate = 0.3, .momentum = 0.5});
  ad::optim::GradsAndVars grads_and_vars;
  if (mode == Mode::kReference) {
    grads_and_vars = momentum->compute_gradients(ad::reduce_mean(per_example));
    m.train_op = momentum->apply_gradients(grads_and_vars);
  } else {
    const bool share = mode == Mode::kShareOfGlobalMean;
    dist::DistributedOptimizer optimizer(
        std::move(momentum),
        {.op = share ? dist::ReduceOp::kSum : dist::ReduceOp::kMean, .fusion_bytes = fusion_bytes});
    const auto loss =
        share ? dist::share_of_global_mean(per_example) : ad::reduce_mean(per_example);
    grads_and_vars = optimizer.compute_gradients(loss);
    m.train_op = optimizer.apply_gradients(grads_and_vars);
    m.num_buckets = optimizer.num_buckets();
    m.broadcast = dist::broadcast_variables(graph, 0);
  }
  for (const auto& [grad, var] : grads_and_vars) {
    m.grads.push_back(grad);
    m.vars.push_back(var);
  }
  return m;
}

// max|a - b| <= tol * max|b|, with a report of both maxima when not.
void check_close(const ad::Array& a, const ad::Array& b, double tol, const std::string& what) {
  BOOST_TEST_REQUIRE(a.shape() == b.shape(),
                     what << ": shapes " << a.shape() << " and " << b.shape());
  double diff = 0;
  double scale = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a.flat(i) - b.flat(i)));
    scale = std::max(scale, std::abs(b.flat(i)));
  }
  BOOST_TEST(diff <= tol * scale, what << ": max difference " << diff << ", max value " << scale);
}

ad::Array rows(const ad::Array& a, std::int64_t first, std::int64_t count) {
  std::vector<double> v;
  const std::int64_t width = a.shape()[1];
  for (std::int64_t i = first * width; i < (first + count) * width; ++i) v.push_back(a.flat(i));
  return ad::Array::from(v, {count, width});
}

struct Split {
  std::int64_t examples;
  std::int64_t batch_per_rank;
};

// Trains both models for 20 steps and compares them after each one.
void train_and_compare(ad::DType dtype, Mode mode, Split split, double tol) {
  const auto data = toy_data(split.examples);
  const std::int64_t n = dist::size();
  const ad::data::BatchIterator whole(data, {.batch_size = split.batch_per_rank * n, .seed = 5});
  const ad::data::BatchIterator shard(data, {.batch_size = split.batch_per_rank,
                                             .seed = 5,
                                             .num_shards = n,
                                             .shard_index = dist::rank()});
  BOOST_TEST_REQUIRE(whole.num_batches() == shard.num_batches());
  ad::Graph ref_graph;
  ad::Graph dist_graph;
  const Model ref = build(ref_graph, dtype, Mode::kReference);
  const Model model = build(dist_graph, dtype, mode);
  ad::Session ref_session(ref_graph);
  ad::Session session(dist_graph);
  ref_session.run({ad::global_variables_initializer(ref_graph)});
  session.run({ad::global_variables_initializer(dist_graph)});
  session.run({model.broadcast});
  for (std::size_t v = 0; v < model.vars.size(); ++v) {
    BOOST_TEST(session.run({model.vars[v].value()})[0].bitwise_equal(
                   ref_session.run({ref.vars[v].value()})[0]),
               "initial " << model.vars[v].name() << " is rank 0's");
  }
  for (int step = 0; step < 20; ++step) {
    const std::int64_t epoch = step / whole.num_batches();
    const std::int64_t index = step % whole.num_batches();
    const auto big = whole.batch(epoch, index);
    const auto mine = shard.batch(epoch, index);
    std::vector<ad::Tensor> fetches = ref.grads;
    fetches.push_back(ref.logits);
    fetches.push_back(ref.train_op);
    const auto ref_out =
        ref_session.run(fetches, {{ref.features, big.features}, {ref.labels, big.labels}});
    fetches = model.grads;
    fetches.push_back(model.logits);
    fetches.push_back(model.train_op);
    const auto out =
        session.run(fetches, {{model.features, mine.features}, {model.labels, mine.labels}});
    const std::string at =
        "step " + std::to_string(step) + ", rank " + std::to_string(dist::rank());
    const std::size_t k = model.grads.size();
    check_close(out[k], rows(ref_out[k], dist::rank() * split.batch_per_rank, mine.labels.size()),
                tol, at + ": logits");
    for (std::size_t v = 0; v < k; ++v) {
      check_close(out[v], ref_out[v], tol, at + ": gradient of " + model.vars[v].name());
      const auto value = session.run({model.vars[v].value()})[0];
      check_close(value, ref_session.run({ref.vars[v].value()})[0], tol,
                  at + ": " + model.vars[v].name());
      BOOST_TEST(ad::testing::bitwise_same_on_every_rank(value),
                 at << ": " << model.vars[v].name() << " differs between ranks");
    }
  }
  // The max-norm constraint ran after the updates: fc2/kernel's largest column norm sits on the
  // bound (the learning rate pushes it there within the first steps), less Keras's epsilon:
  // w * 0.6 / (1e-7 + norm) has norm 0.6 * (1 - 1.7e-7).
  const auto kernel = session.run({model.vars[2].value()})[0];
  BOOST_TEST_REQUIRE(model.vars[2].name() == "fc2/kernel");
  double largest = 0;
  for (std::int64_t j = 0; j < kernel.shape()[1]; ++j) {
    double squares = 0;
    for (std::int64_t i = 0; i < kernel.shape()[0]; ++i) {
      squares += kernel.at({i, j}) * kernel.at({i, j});
    }
    largest = std::max(largest, std::sqrt(squares));
  }
  BOOST_TEST(largest == 0.6,
             boost::test_tools::tolerance(dtype == ad::DType::Float32 ? 1e-5 : 1e-6));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training_test)

// 48 examples: every global batch (8 or 12 examples) is full, so every rank has 4.
BOOST_AUTO_TEST_CASE(equal_batches_match_one_process_with_the_whole_batch_float64) {
  train_and_compare(ad::DType::Float64, Mode::kMeanOfRanks, {.examples = 48, .batch_per_rank = 4},
                    1e-12);
}

BOOST_AUTO_TEST_CASE(equal_batches_match_one_process_with_the_whole_batch_float32) {
  train_and_compare(ad::DType::Float32, Mode::kMeanOfRanks, {.examples = 48, .batch_per_rank = 4},
                    1e-5);
}

BOOST_AUTO_TEST_CASE(unequal_and_empty_shards_match_with_share_of_global_mean) {
  // 8 examples, 5 per rank: 5 and 3 on two ranks, 5, 3 and 0 on three (one rank: 5 then 3).
  train_and_compare(ad::DType::Float64, Mode::kShareOfGlobalMean,
                    {.examples = 8, .batch_per_rank = 5}, 1e-12);
}

BOOST_AUTO_TEST_CASE(one_rank_holding_the_whole_batch_matches) {
  // 6 examples, 6 per rank: rank 0 has them all, every other rank none.
  train_and_compare(ad::DType::Float64, Mode::kShareOfGlobalMean,
                    {.examples = 6, .batch_per_rank = 6}, 1e-12);
}

BOOST_AUTO_TEST_CASE(bucket_size_does_not_change_a_bit) {
  // One bucket per gradient and one for all: the same rank-order sums, so the same bits.
  const auto data = toy_data(12);
  std::vector<ad::Array> results[2];
  for (int variant = 0; variant < 2; ++variant) {
    ad::Graph graph;
    const Model model =
        build(graph, ad::DType::Float32, Mode::kMeanOfRanks, variant == 0 ? 1 : 64 << 20);
    BOOST_TEST(model.num_buckets == (variant == 0 ? 4 : 1));
    ad::Session session(graph);
    session.run({ad::global_variables_initializer(graph)});
    session.run({model.broadcast});
    const ad::data::BatchIterator shard(
        data,
        {.batch_size = 2, .seed = 1, .num_shards = dist::size(), .shard_index = dist::rank()});
    for (int step = 0; step < 3; ++step) {
      const auto batch = shard.batch(0, step % shard.num_batches());
      session.run({model.train_op},
                  {{model.features, batch.features}, {model.labels, batch.labels}});
    }
    for (const auto& var : model.vars) results[variant].push_back(session.run({var.value()})[0]);
  }
  for (std::size_t v = 0; v < results[0].size(); ++v) {
    BOOST_TEST(results[0][v].bitwise_equal(results[1][v]));
  }
}

BOOST_AUTO_TEST_CASE(root_saves_and_every_rank_restores) {
  ad::Graph graph;
  const Model model = build(graph, ad::DType::Float64, Mode::kMeanOfRanks);
  ad::Session session(graph);
  session.run({ad::global_variables_initializer(graph)});
  session.run({model.broadcast});
  // A directory name every rank agrees on: rank 0's process id, broadcast.
  ad::Graph id_graph;
  const auto pid = ad::placeholder(id_graph, ad::DType::Int64, {}, "pid");
  const auto root_pid = dist::broadcast(pid, 0);
  ad::Session id_session(id_graph);
  const auto id =
      id_session.run({root_pid}, {{pid, ad::Array::scalar<std::int64_t>(::getpid())}})[0];
  const auto dir = std::filesystem::temp_directory_path() /
                   ("gradtape_distributed_" + std::to_string(id.data<std::int64_t>()[0]));
  if (dist::rank() == 0) std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.ckpt").string();
  const ad::Saver saver(graph);
  const auto saved = session.run({model.vars[0].value()})[0];
  // Every rank changes its kernel differently; restoring brings back rank 0's saved value.
  dist::save_on_root(saver, session, path);
  session.run({model.vars[0].assign(model.vars[0].value() * (2.0 + dist::rank()))});
  saver.restore(session, path);
  BOOST_TEST(session.run({model.vars[0].value()})[0].bitwise_equal(saved));
  dist::barrier("before removing the checkpoint");
  if (dist::rank() == 0) std::filesystem::remove_all(dir);
  // A failed save is reported on every rank.
  BOOST_CHECK_EXCEPTION(
      dist::save_on_root(saver, session, (dir / "missing" / "x.ckpt").string()), ad::Error,
      [](const ad::Error& e) { return std::string(e.what()).find("x.ckpt") != std::string::npos; });
}

BOOST_AUTO_TEST_SUITE_END()
