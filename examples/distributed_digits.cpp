// distributed_digits: data-parallel training of an MLP on the digits data over MPI.
//   mpirun -np 2 build/examples/distributed_digits --batch-size 32
// equals, up to rounding, one process with the doubled batch:
//   build/examples/distributed_digits --batch-size 64
// Each rank reads its shard of every global batch (BatchIterator's num_shards / shard_index), the
// loss is the rank's share of the global batch's mean, and DistributedOptimizer sums the gradients
// across ranks before Adam's update, so the ranks' variables stay bitwise identical. Rank 0
// prints the progress, the held-out accuracy and the step time split into compute and
// communication (the time inside collectives, including waiting for the slower rank), and writes
// the checkpoint; every rank then restores it. Exits with status 1 below --min-accuracy.
// --sync-bn puts a synchronized BatchNormalization after the first layer: its training statistics
// are over the global batch, so it too equals one process with the doubled batch.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>

#include "autodiff/autodiff.h"
#include "distributed/distributed.h"
#include "examples/common/data.h"
#include "examples/common/flags.h"
#include "layers/batch_normalization.h"
#include "layers/dense.h"
#include "layers/metrics.h"
#include "optim/adam.h"

namespace dist = ad::distributed;

namespace {

struct Model {
  ad::Tensor x;         // Float32 [batch, features]
  ad::Tensor training;  // Bool scalar, true unless fed false (--sync-bn's layer in inference)
  ad::Tensor labels;    // Int64 [batch]
  ad::Tensor loss;      // this rank's share of the global batch's mean cross-entropy
  ad::Tensor correct;   // number of this rank's examples classified correctly
  ad::Tensor train_op;  // gradients summed over the ranks, then one Adam step
  ad::Tensor broadcast;
};

Model build_model(ad::Graph& g, std::int64_t num_features, int num_classes, double learning_rate,
                  std::uint64_t seed, bool sync_bn) {
  g.set_seed(static_cast<std::int64_t>(seed));
  Model m;
  m.x = ad::placeholder(g, ad::DType::Float32, {-1, num_features}, "x");
  m.labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  ad::Tensor h;
  if (sync_bn) {
    m.training = ad::placeholder_with_default(ad::constant(g, ad::Array::scalar(true)), ad::Shape{},
                                              "training");
    h = ad::layers::dense(m.x, 128, {.name = "fc1"});
    h = ad::relu(ad::layers::batch_normalization(
        h, {.momentum = 0.9, .training = m.training, .name = "bn1", .synchronized = true}));
  } else {
    h = ad::layers::dense(m.x, 128, {.activation = ad::relu, .name = "fc1"});
  }
  h = ad::layers::dense(h, 64, {.activation = ad::relu, .name = "fc2"});
  const auto logits = ad::layers::dense(h, num_classes, {.name = "logits"});
  const auto per_example = ad::nn::sparse_softmax_cross_entropy_with_logits(m.labels, logits);
  m.loss = dist::share_of_global_mean(per_example);
  m.correct =
      ad::reduce_sum(ad::cast(ad::equal(m.labels, ad::argmax(logits, 1)), ad::DType::Float32));
  dist::DistributedOptimizer optimizer(
      std::make_unique<ad::optim::Adam>(ad::optim::AdamOptions{.learning_rate = learning_rate}),
      {.op = dist::ReduceOp::kSum});
  m.train_op = optimizer.minimize(m.loss);
  if (sync_bn) {  // the moving statistics' updates run with every step
    m.train_op = ad::group({m.train_op, ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
  }
  m.broadcast = dist::broadcast_variables(g, 0);
  return m;
}

double held_out_accuracy(ad::Session& session, const Model& m, const ad::data::Dataset& test) {
  ad::FeedDict feeds{{m.x, test.features}, {m.labels, test.labels}};
  if (m.training) feeds.emplace_back(m.training, ad::Array::scalar(false));
  const auto out = session.run({m.correct}, feeds);
  return out[0].item<float>() / static_cast<double>(test.size());
}

int run(int argc, char** argv) {
  double min_accuracy = 0.95;
  examples::ExampleFlags flags("distributed_digits",
                               "data-parallel MLP training on the digits data",
                               {.epochs = 20, .batch_size = 32, .learning_rate = 3e-3});
  bool sync_bn = false;
  flags.add("min-accuracy", min_accuracy, "exit with status 1 below this held-out accuracy");
  flags.add("sync-bn", sync_bn, "synchronized batch normalization after the first layer");
  if (!flags.parse(argc, argv)) return 0;
  dist::init();
  const auto& f = flags.common();
  const bool root = dist::rank() == 0;
  const auto data = examples::load_example_data(f.data, 0.2, f.seed);
  const ad::data::BatchIterator batches(data.train, {.batch_size = f.batch_size,
                                                     .seed = f.seed,
                                                     .num_shards = dist::size(),
                                                     .shard_index = dist::rank()});
  ad::Graph g;
  const Model m = build_model(g, data.train.num_features(), data.train.num_classes, f.learning_rate,
                              f.seed, sync_bn);
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  session.run({m.broadcast});
  if (root) {
    std::printf("%d rank(s) x batch %lld (global batch %lld), %lld steps per epoch, %d thread(s)\n",
                dist::size(), static_cast<long long>(f.batch_size),
                static_cast<long long>(f.batch_size * dist::size()),
                static_cast<long long>(batches.num_batches()), examples::kernel_threads());
  }
  using Clock = std::chrono::steady_clock;
  double step_seconds = 0;
  const auto comm_before = dist::communication_stats();
  std::int64_t steps = 0;
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    double loss = 0;
    for (const auto& batch : batches.epoch(epoch)) {
      const auto start = Clock::now();
      const auto out =
          session.run({m.train_op, m.loss}, {{m.x, batch.features}, {m.labels, batch.labels}});
      step_seconds += std::chrono::duration<double>(Clock::now() - start).count();
      loss += out[1].item<float>();
      ++steps;
    }
    if (root && (epoch + 1) % 5 == 0) {
      std::printf("epoch %2d: rank 0's loss share %.4f, held-out accuracy %.4f\n", epoch + 1,
                  loss / static_cast<double>(batches.num_batches()),
                  held_out_accuracy(session, m, data.test));
    }
  }
  const auto comm = dist::communication_stats();
  const double comm_seconds = comm.seconds - comm_before.seconds;
  const double ms = 1e3 / static_cast<double>(steps);
  const std::string checkpoint = f.checkpoint.empty()
                                     ? examples::default_output_path("distributed_digits.ckpt")
                                     : f.checkpoint;
  const ad::Saver saver(g);
  dist::save_on_root(saver, session, checkpoint);
  ad::Session restored(g);
  saver.restore(restored, checkpoint);  // every rank reads rank 0's file
  const double accuracy = held_out_accuracy(restored, m, data.test);
  const bool ok = accuracy >= min_accuracy;
  if (root) {
    std::printf(
        "step time %.3f ms: compute %.3f ms, communication %.3f ms (%lld collectives, "
        "%.1f KB sent per step)\n",
        step_seconds * ms, (step_seconds - comm_seconds) * ms, comm_seconds * ms,
        static_cast<long long>(comm.collectives - comm_before.collectives),
        static_cast<double>(comm.bytes_sent - comm_before.bytes_sent) / 1e3 /
            static_cast<double>(steps));
    std::printf("restored %s on every rank: held-out accuracy %.4f (floor %.2f): %s\n",
                checkpoint.c_str(), accuracy, min_accuracy, ok ? "ok" : "BELOW THE FLOOR");
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("distributed_digits", [&] { return run(argc, argv); });
}
