// Synchronized batch normalization on 1, 2 and 3 ranks (CTest runs this suite alone and under
// mpirun -np 2 and 3). Each rank trains dense -> BatchNormalization(synchronized) -> tanh -> dense
// on its rows of every global batch, and also, locally and without any collective, the same model
// with an ordinary composed-path layer (fused=false) on the whole global batch: the reference, one
// process with the batch of all ranks. For 20 steps the outputs, every gradient, the moving
// statistics and the variables must equal the reference's (relative 1e-12 in float64, 1e-5 in
// float32, normwise) and be bitwise the same on every rank; splits of 4 examples per rank, and
// 5 / 3 / 0 (a rank with no examples); with and without renorm and adjustment. Also: float32 input
// of mean 1000 and std 0.1 gives the variance within 1e-3 of float64, second derivatives equal the
// reference's, and the configurations that cannot work are ValueErrors.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/initializers.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/global_moments_hook.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "autodiff/variable.h"
#include "distributed/collectives.h"
#include "distributed/communicator.h"
#include "distributed/optimizer.h"
#include "layers/batch_normalization.h"
#include "layers/dense.h"
#include "optim/momentum.h"
#include "tests/distributed/distributed_test_util.h"

namespace dist = ad::distributed;
using ad::testing::MpiFixture;
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

namespace {

constexpr std::int64_t kFeatures = 4;

// Rows per rank: `equal` gives every rank 4; otherwise 5, 3, 0, 5, 3, 0, ...; `last_empty` gives
// the last rank of several none (and the others 4 + rank).
struct Split {
  bool equal = true;
  bool last_empty = false;
  [[nodiscard]] std::int64_t rows_of(int r) const {
    if (last_empty) return r == dist::size() - 1 && r > 0 ? 0 : 4 + r;
    if (equal) return 4;
    return r % 3 == 0 ? 5 : (r % 3 == 1 ? 3 : 0);
  }
  [[nodiscard]] std::int64_t first_row_of(int r) const {
    std::int64_t first = 0;
    for (int k = 0; k < r; ++k) first += rows_of(k);
    return first;
  }
  [[nodiscard]] std::int64_t global_rows() const { return first_row_of(dist::size()); }
};

// Global batch `step`: features around `center` with spread `spread` (channel j shifted by j),
// and labels of 3 classes from a fixed rule of the features.
struct Batch {
  ad::Array features;
  ad::Array labels;
};
Batch global_batch(std::int64_t rows, int step, double center = 0.5, double spread = 1.0) {
  std::vector<double> x;
  std::vector<std::int64_t> y;
  for (std::int64_t i = 0; i < rows; ++i) {
    double score = 0;
    for (std::int64_t j = 0; j < kFeatures; ++j) {
      const double v =
          std::sin(0.9 * static_cast<double>(i) + 1.7 * static_cast<double>(j) + 0.37 * step);
      x.push_back(center + static_cast<double>(j) * 0.25 + spread * v);
      score += static_cast<double>(j + 1) * v;
    }
    y.push_back(score > 1 ? 2 : (score > -1 ? 1 : 0));
  }
  return {ad::Array::from(x, {rows, kFeatures}), ad::Array::from(y, {rows})};
}

ad::Array rows(const ad::Array& a, std::int64_t first, std::int64_t count) {
  std::vector<double> v;
  const std::int64_t width = a.shape().rank() == 2 ? a.shape()[1] : 1;
  for (std::int64_t i = first * width; i < (first + count) * width; ++i) v.push_back(a.flat(i));
  if (a.shape().rank() == 1) return ad::Array::from(v, {count}).astype(a.dtype());
  return ad::Array::from(v, {count, width}).astype(a.dtype());
}

Batch my_rows(const Batch& whole, const Split& split) {
  const std::int64_t first = split.first_row_of(dist::rank());
  const std::int64_t count = split.rows_of(dist::rank());
  return {rows(whole.features, first, count), rows(whole.labels, first, count)};
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

struct Model {
  ad::Tensor features;
  ad::Tensor labels;
  ad::Tensor logits;
  std::vector<ad::Tensor> grads;  // in the order of `trained`
  std::vector<ad::Variable> trained;
  std::vector<ad::Variable> all;  // every global variable, moving statistics included
  ad::Tensor train_op;
  ad::Tensor broadcast;
};

ad::layers::Adjustment adjustment(ad::DType dtype) {
  return [dtype](const ad::Tensor& input_shape) {
    ad::Graph& graph = input_shape.graph();
    const auto scale = ad::Array::from(std::vector<double>{1.1, 0.9, 1.3, 0.8, 1.0}, {5});
    const auto bias = ad::Array::from(std::vector<double>{0.05, -0.1, 0.0, 0.2, -0.03}, {5});
    return std::pair{ad::constant(graph, scale.astype(dtype)),
                     ad::constant(graph, bias.astype(dtype))};
  };
}

// 4 -> 5 -> BN -> tanh -> 3, trained by Momentum with the update ops grouped into the train op.
// `synchronized`: the distributed model (the BN layer synchronized, the loss each rank's share of
// the global mean, gradients summed across ranks); otherwise the single-process reference.
// `adjust`: TF's adjustment, a fixed per-channel scale and bias composed after the normalization.
// `fused`: the synchronized layer's hand-written gradient (the reference is always composed).
Model build(ad::Graph& graph, ad::DType dtype, bool synchronized, bool renorm, bool adjust,
            bool fused) {
  Model m;
  m.features = ad::placeholder(graph, ad::DType::Float64, {-1, kFeatures}, "features");
  m.labels = ad::placeholder(graph, ad::DType::Int64, {-1}, "labels");
  const auto x = ad::cast(m.features, dtype);
  const auto h = ad::layers::dense(x, 5,
                                   {.use_bias = false,
                                    .kernel_initializer = ad::initializers::glorot_uniform(11),
                                    .name = "fc1"});
  ad::layers::BatchNormalization bn(
      {.momentum = 0.9,
       .beta_initializer = ad::initializers::constant(0.1),
       .gamma_initializer = ad::initializers::constant(1.2),
       .training = true,
       .name = "bn",
       .renorm = renorm,
       .renorm_clipping = {{"rmax", 1.5}, {"rmin", 0.7}, {"dmax", 0.5}},
       .renorm_momentum = 0.8,
       .fused = synchronized && fused,
       .adjustment = adjust ? ad::layers::Adjustment(adjustment(dtype)) : ad::layers::Adjustment(),
       .synchronized = synchronized});
  m.logits = ad::layers::dense(
      ad::tanh(bn(h)), 3,
      {.kernel_initializer = ad::initializers::glorot_uniform(13), .name = "fc2"});
  const auto per_example = ad::nn::sparse_softmax_cross_entropy_with_logits(m.labels, m.logits);
  auto momentum = std::make_unique<ad::optim::Momentum>(
      ad::optim::MomentumOptions{.learning_rate = 0.2, .momentum = 0.5});
  ad::optim::GradsAndVars grads_and_vars;
  const auto updates = ad::group(graph.get_collection(ad::GraphKeys::UPDATE_OPS));
  if (!synchronized) {
    grads_and_vars = momentum->compute_gradients(ad::reduce_mean(per_example));
    m.train_op = ad::group({momentum->apply_gradients(grads_and_vars), updates});
  } else {
    dist::DistributedOptimizer optimizer(std::move(momentum), {.op = dist::ReduceOp::kSum});
    grads_and_vars = optimizer.compute_gradients(dist::share_of_global_mean(per_example));
    m.train_op = ad::group({optimizer.apply_gradients(grads_and_vars), updates});
    m.broadcast = dist::broadcast_variables(graph, 0);
  }
  for (const auto& [grad, var] : grads_and_vars) {
    m.grads.push_back(grad);
    m.trained.push_back(var);
  }
  m.all = ad::global_variables(graph);
  return m;
}

void train_and_compare(ad::DType dtype, Split split, bool renorm, bool adjust = false,
                       bool fused = true) {
  const double tol = dtype == ad::DType::Float32 ? 1e-5 : 1e-12;
  ad::Graph ref_graph;
  ad::Graph dist_graph;
  const Model ref = build(ref_graph, dtype, false, renorm, adjust, false);
  const Model model = build(dist_graph, dtype, true, renorm, adjust, fused);
  BOOST_TEST_REQUIRE(model.all.size() == ref.all.size());
  // The hand-written gradient is attached unless fused=false, renorm or adjustment.
  bool has_fused_gradient = false;
  for (int i = 0; i < dist_graph.num_nodes(); ++i)
    has_fused_gradient |= dist_graph.node(i).op->name == "SyncBatchNormGrad";
  BOOST_TEST(has_fused_gradient == (fused && !renorm && !adjust));
  // fc1/kernel, gamma, beta, the moving statistics (2, or 5 with renorm), fc2's kernel and bias,
  // and a Momentum slot for each of the 5 trained ones.
  BOOST_TEST_REQUIRE(model.all.size() == (renorm ? 15U : 12U));
  ad::Session ref_session(ref_graph);
  ad::Session session(dist_graph);
  ref_session.run({ad::global_variables_initializer(ref_graph)});
  session.run({ad::global_variables_initializer(dist_graph)});
  session.run({model.broadcast});
  for (int step = 0; step < 20; ++step) {
    const Batch whole = global_batch(split.global_rows(), step);
    const Batch mine = my_rows(whole, split);
    std::vector<ad::Tensor> fetches = ref.grads;
    fetches.push_back(ref.logits);
    fetches.push_back(ref.train_op);
    const auto ref_out =
        ref_session.run(fetches, {{ref.features, whole.features}, {ref.labels, whole.labels}});
    fetches = model.grads;
    fetches.push_back(model.logits);
    fetches.push_back(model.train_op);
    const auto out =
        session.run(fetches, {{model.features, mine.features}, {model.labels, mine.labels}});
    const std::string at =
        "step " + std::to_string(step) + ", rank " + std::to_string(dist::rank());
    const std::size_t k = model.grads.size();
    check_close(out[k], rows(ref_out[k], split.first_row_of(dist::rank()), mine.labels.size()), tol,
                at + ": logits");
    for (std::size_t v = 0; v < k; ++v) {
      BOOST_TEST_REQUIRE(model.trained[v].name() == ref.trained[v].name());
      check_close(out[v], ref_out[v], tol, at + ": gradient of " + model.trained[v].name());
    }
    for (std::size_t v = 0; v < model.all.size(); ++v) {
      BOOST_TEST_REQUIRE(model.all[v].name() == ref.all[v].name());
      const auto value = session.run({model.all[v].value()})[0];
      check_close(value, ref_session.run({ref.all[v].value()})[0], tol,
                  at + ": " + model.all[v].name());
      BOOST_TEST(ad::testing::bitwise_same_on_every_rank(value),
                 at << ": " << model.all[v].name() << " differs between ranks");
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sync_batch_norm_test)

BOOST_AUTO_TEST_CASE(equal_batches_match_one_process_with_the_whole_batch) {
  for (const bool fused : {true, false}) {
    for (const auto dtype : {ad::DType::Float64, ad::DType::Float32}) {
      BOOST_TEST_CONTEXT(dtype << (fused ? ", fused" : ", composed")) {
        train_and_compare(dtype, {.equal = true}, false, false, fused);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(unequal_and_empty_shards_match_one_process_with_the_whole_batch) {
  for (const bool fused : {true, false}) {
    for (const auto dtype : {ad::DType::Float64, ad::DType::Float32}) {
      BOOST_TEST_CONTEXT(dtype << (fused ? ", fused" : ", composed")) {
        train_and_compare(dtype, {.equal = false}, false, false, fused);
        train_and_compare(dtype, {.last_empty = true}, false, false, fused);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(renorm_and_adjustment_follow_the_global_statistics) {
  train_and_compare(ad::DType::Float64, {.equal = false}, true);
  train_and_compare(ad::DType::Float32, {.equal = true}, true);
  train_and_compare(ad::DType::Float64, {.equal = false}, false, true);
  train_and_compare(ad::DType::Float32, {.equal = false}, true, true);
}

BOOST_AUTO_TEST_CASE(large_mean_float32_variance_within_1e_3_of_float64) {
  // Mean 1000 and std 0.1 in float32: momentum 0 makes the moving statistics the batch's.
  const Split split{.equal = false};
  const Batch whole = global_batch(split.global_rows(), 0, 1000.0, 0.1);
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float32, {-1, kFeatures}, "x");
  ad::layers::BatchNormalization bn({.momentum = 0.0, .training = true, .synchronized = true});
  (void)bn(x);
  ad::Session session(graph);
  session.run({ad::global_variables_initializer(graph)});
  const auto mine = my_rows(whole, split).features.astype(ad::DType::Float32);
  session.run({ad::group(bn.updates())}, {{x, mine}});
  const auto moved = session.run({bn.moving_mean().value(), bn.moving_variance().value()});
  const auto n = static_cast<double>(split.global_rows());
  for (std::int64_t c = 0; c < kFeatures; ++c) {
    // Float64 two-pass over the values as rounded to float32.
    const auto value = [&](std::int64_t i) {
      return static_cast<double>(static_cast<float>(whole.features.at({i, c})));
    };
    double mean = 0;
    for (std::int64_t i = 0; i < split.global_rows(); ++i) mean += value(i) / n;
    double variance = 0;
    for (std::int64_t i = 0; i < split.global_rows(); ++i) {
      variance += (value(i) - mean) * (value(i) - mean) / n;
    }
    BOOST_TEST(std::abs(moved[0].flat(c) - mean) <= 1e-6 * mean);
    BOOST_TEST(std::abs(moved[1].flat(c) - variance) <= 1e-3 * variance,
               "channel " << c << ": " << moved[1].flat(c) << " vs " << variance);
  }
  BOOST_TEST(ad::testing::bitwise_same_on_every_rank(moved[1]));
}

void compare_second_derivatives(bool fused) {
  // L_r = sum(y^2 tanh(x) + y) on each rank; S_r = sum(dL/dx * tanh(x)). Summed over the ranks
  // they are the reference's on the whole batch, so dS/dx on rank r is the reference's rows and
  // the ranks' dS/dgamma sum to the reference's.
  const Split split{.equal = false};
  const Batch whole = global_batch(split.global_rows(), 3);
  struct Built {
    ad::Tensor x;
    ad::Tensor grad_x;
    ad::Tensor second_x;
    ad::Tensor second_gamma;
  };
  const auto make = [&](ad::Graph& graph, bool synchronized) {
    Built b;
    b.x = ad::placeholder(graph, ad::DType::Float64, {-1, kFeatures}, "x");
    ad::layers::BatchNormalization bn({.beta_initializer = ad::initializers::constant(0.2),
                                       .gamma_initializer = ad::initializers::constant(1.3),
                                       .training = true,
                                       .fused = synchronized && fused,
                                       .synchronized = synchronized});
    const auto y = bn(b.x);
    const auto loss = ad::reduce_sum(y * y * ad::tanh(b.x) + y);
    b.grad_x = ad::gradients({loss}, {b.x})[0];
    const auto s = ad::reduce_sum(b.grad_x * ad::tanh(b.x));
    const auto second = ad::gradients(s, {b.x, bn.gamma()});
    b.second_x = second[0];
    b.second_gamma =
        synchronized ? dist::allreduce(second[1], dist::ReduceOp::kSum, "gamma") : second[1];
    return b;
  };
  ad::Graph ref_graph;
  ad::Graph graph;
  const Built ref = make(ref_graph, false);
  const Built mine = make(graph, true);
  ad::Session ref_session(ref_graph);
  ad::Session session(graph);
  ref_session.run({ad::global_variables_initializer(ref_graph)});
  session.run({ad::global_variables_initializer(graph)});
  const auto expected =
      ref_session.run({ref.grad_x, ref.second_x, ref.second_gamma}, {{ref.x, whole.features}});
  const auto got = session.run({mine.grad_x, mine.second_x, mine.second_gamma},
                               {{mine.x, my_rows(whole, split).features}});
  const std::int64_t first = split.first_row_of(dist::rank());
  const std::int64_t count = split.rows_of(dist::rank());
  check_close(got[0], rows(expected[0], first, count), 1e-12, "dL/dx");
  check_close(got[1], rows(expected[1], first, count), 1e-12, "dS/dx");
  check_close(got[2], expected[2], 1e-12, "dS/dgamma");
}

BOOST_AUTO_TEST_CASE(second_derivatives_equal_one_process_with_the_whole_batch) {
  for (const bool fused : {true, false}) {
    BOOST_TEST_CONTEXT((fused ? "fused" : "composed")) { compare_second_derivatives(fused); }
  }
}

BOOST_AUTO_TEST_CASE(an_empty_global_batch_is_an_invalid_argument_error) {
  // Every rank empty at once: nothing to average, as an empty batch in one process. Every rank
  // fails at the same check after the same collective, the moving statistics are untouched, and
  // the next step (data on rank 0 only) runs.
  for (const bool fused : {true, false}) {
    BOOST_TEST_CONTEXT((fused ? "fused" : "composed")) {
      ad::Graph graph;
      const auto x = ad::placeholder(graph, ad::DType::Float32, {-1, kFeatures}, "x");
      ad::layers::BatchNormalization bn({.momentum = 0.5,
                                         .training = true,
                                         .name = "bn_empty",
                                         .fused = fused,
                                         .synchronized = true});
      const auto y = bn(x);
      const auto dx = ad::gradients(ad::reduce_sum(y * y), {x})[0];
      const auto step = ad::group({ad::group(bn.updates()), dx});
      ad::Session session(graph);
      session.run({ad::global_variables_initializer(graph)});
      const auto empty =
          ad::Array::from(std::vector<double>{}, {0, kFeatures}).astype(ad::DType::Float32);
      for (const auto& fetch : {y, step}) {
        BOOST_CHECK_EXCEPTION(
            (void)session.run({fetch}, {{x, empty}}), ad::InvalidArgumentError,
            [](const ad::InvalidArgumentError& e) {
              const std::string what = e.what();
              return what.find("batch_normalization 'bn_empty'") != std::string::npos &&
                     what.find("empty on every process") != std::string::npos &&
                     what.find("[0, 4]") != std::string::npos &&
                     what.find("moving statistics are left unchanged") != std::string::npos;
            });
      }
      const auto moving = session.run({bn.moving_mean().value(), bn.moving_variance().value()});
      for (std::int64_t c = 0; c < kFeatures; ++c) {
        BOOST_TEST(moving[0].flat(c) == 0.0);
        BOOST_TEST(moving[1].flat(c) == 1.0);
      }
      // Rank 0 holds 2 rows with mean 1 and 3 in channel 0, the others none.
      const auto rows = dist::rank() == 0
                            ? ad::Array::from(std::vector<double>{1, 0, 0, 0, 3, 0, 0, 0}, {2, 4})
                            : ad::Array::from(std::vector<double>{}, {0, kFeatures});
      session.run({step}, {{x, rows.astype(ad::DType::Float32)}});
      const auto moved = session.run({bn.moving_mean().value()});
      BOOST_TEST(moved[0].flat(0) == 1.0);  // 0.5 * 0 + 0.5 * 2
    }
  }
}

BOOST_AUTO_TEST_CASE(virtual_batch_size_and_a_missing_hook_are_value_errors) {
  ad::Graph graph;
  const auto x = ad::placeholder(graph, ad::DType::Float32, {8, kFeatures}, "x");
  ad::layers::BatchNormalization ghost(
      {.training = true, .name = "ghost", .virtual_batch_size = 2, .synchronized = true});
  BOOST_CHECK_EXCEPTION((void)ghost(x), ad::ValueError, [](const ad::ValueError& e) {
    const std::string what = e.what();
    return what.find("'ghost'") != std::string::npos &&
           what.find("virtual_batch_size") != std::string::npos;
  });
  const auto saved = ad::nn::global_moments_hook();
  ad::nn::set_global_moments_hook({});
  ad::layers::BatchNormalization alone({.training = true, .name = "alone", .synchronized = true});
  BOOST_CHECK_EXCEPTION((void)alone(x), ad::ValueError, [](const ad::ValueError& e) {
    const std::string what = e.what();
    return what.find("'alone'") != std::string::npos &&
           what.find("distributed::init()") != std::string::npos;
  });
  ad::nn::set_global_moments_hook(saved);
  // Inference needs no hook: it is unchanged.
  ad::layers::BatchNormalization inference({.training = false, .synchronized = true});
  BOOST_CHECK_NO_THROW((void)inference(x));
}

BOOST_AUTO_TEST_SUITE_END()
