// Full training loops: a plain linear model, and a batch-normalized model with gamma constrained
// non-negative and beta max-norm trained with group(train_op, UPDATE_OPS); then save and restore
// mid-training (variables, slots, beta powers, global step, moving statistics) and continue,
// bitwise equal to an uninterrupted run.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <string>

#include "autodiff/autodiff.h"
#include "layers/batch_normalization.h"
#include "optim/optim.h"
#include "tests/optim/optim_test_util.h"
#include "tests/support/gradient_check.h"

using namespace ad::optim::testing;  // NOLINT(google-build-using-namespace)

namespace {

constexpr std::int64_t kRows = 256;
constexpr std::int64_t kFeatures = 3;

// Features with per-column means and standard deviations far from 0 and 1.
const std::vector<double> kMeans = {2.0, -1.0, 0.5};
const std::vector<double> kStddevs = {3.0, 0.5, 1.5};

ad::Array make_features(std::uint64_t seed) {
  const ad::Array z = ad::testing::random_normal({kRows, kFeatures}, seed);
  std::vector<double> x(static_cast<std::size_t>(kRows * kFeatures));
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kFeatures; ++c) {
      const auto i = static_cast<std::size_t>(r * kFeatures + c);
      x[i] = kMeans[static_cast<std::size_t>(c)] +
             kStddevs[static_cast<std::size_t>(c)] * z.flat(static_cast<std::int64_t>(i));
    }
  }
  return ad::Array::from<double>(x, {kRows, kFeatures});
}

// Column means and biased variances of a [rows, cols] array.
std::pair<std::vector<double>, std::vector<double>> column_moments(const ad::Array& x) {
  const auto rows = x.shape()[0];
  const auto cols = x.shape()[1];
  std::vector<double> mean(static_cast<std::size_t>(cols), 0.0);
  std::vector<double> var(static_cast<std::size_t>(cols), 0.0);
  for (std::int64_t c = 0; c < cols; ++c) {
    for (std::int64_t r = 0; r < rows; ++r) mean[c] += x.at({r, c}) / static_cast<double>(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      var[c] += (x.at({r, c}) - mean[c]) * (x.at({r, c}) - mean[c]) / static_cast<double>(rows);
    }
  }
  return {mean, var};
}

// Targets (x - mean)/std · [2, -1.5, 0.5] + [0.6, -0.5, 0.3]: the best gamma would be negative
// for the second feature and the best beta has norm 0.84, so both constraints are active.
const std::vector<double> kTargetScale = {2.0, -1.5, 0.5};
const std::vector<double> kTargetShift = {0.6, -0.5, 0.3};
constexpr double kBetaMaxNorm = 0.5;

ad::Array make_targets(const ad::Array& x) {
  const auto [mean, var] = column_moments(x);
  std::vector<double> y(static_cast<std::size_t>(x.size()));
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kFeatures; ++c) {
      const double z = (x.at({r, c}) - mean[c]) / std::sqrt(var[c]);
      y[static_cast<std::size_t>(r * kFeatures + c)] = z * kTargetScale[c] + kTargetShift[c];
    }
  }
  return ad::Array::from<double>(y, x.shape());
}

struct BatchNormModel {
  ad::Graph graph;
  ad::Tensor x, y, training, loss, train_op;
  ad::Variable gamma, beta, moving_mean, moving_variance, global_step;
  std::unique_ptr<ad::optim::Adam> adam;

  explicit BatchNormModel(double learning_rate) {
    x = ad::placeholder(graph, ad::DType::Float64, {-1, kFeatures}, "x");
    y = ad::placeholder(graph, ad::DType::Float64, {-1, kFeatures}, "y");
    training = ad::placeholder(graph, ad::DType::Bool, {}, "training");
    const auto out = ad::layers::batch_normalization(
        x, {.momentum = 0.9,
            .beta_constraint = ad::constraints::max_norm(kBetaMaxNorm, {0}),
            .gamma_constraint = ad::constraints::non_neg(),
            .training = training});
    loss = ad::reduce_mean(ad::square(out - y));
    gamma = variable_named(graph, "batch_normalization/gamma");
    beta = variable_named(graph, "batch_normalization/beta");
    moving_mean = variable_named(graph, "batch_normalization/moving_mean");
    moving_variance = variable_named(graph, "batch_normalization/moving_variance");
    global_step = ad::optim::get_or_create_global_step(graph);
    adam =
        std::make_unique<ad::optim::Adam>(ad::optim::AdamOptions{.learning_rate = learning_rate});
    train_op = ad::group({adam->minimize(loss, global_step),
                          ad::group(graph.get_collection(ad::GraphKeys::UPDATE_OPS))});
  }
};

std::string temp_checkpoint(const std::string& stem) {
  return (std::filesystem::temp_directory_path() /
          (stem + "_" + std::to_string(::getpid()) + ".ckpt"))
      .string();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training_test)

BOOST_AUTO_TEST_CASE(a_linear_model_trained_with_each_optimizer_fits_its_data) {
  const ad::Array x_value = make_features(1);
  // y = x · [0.5, -2, 1] + 0.25.
  std::vector<double> y_values;
  for (std::int64_t r = 0; r < kRows; ++r) {
    y_values.push_back(0.5 * x_value.at({r, 0}) - 2.0 * x_value.at({r, 1}) +
                       1.0 * x_value.at({r, 2}) + 0.25);
  }
  const ad::Array y_value = ad::Array::from<double>(y_values, {kRows, 1});
  const auto train = [&](ad::optim::Optimizer& opt, int steps) {
    ad::Graph g;
    auto x = ad::placeholder(g, ad::DType::Float64, {-1, kFeatures}, "x");
    auto y = ad::placeholder(g, ad::DType::Float64, {-1, 1}, "y");
    auto w = make_variable(g, "w", {0.0, 0.0, 0.0}, {kFeatures, 1});
    auto b = make_variable(g, "b", {0.0}, {1});
    auto loss = ad::reduce_mean(ad::square(ad::matmul(x, w.value()) + b.value() - y));
    auto train_op = opt.minimize(loss);
    ad::Session s(g);
    s.run({ad::global_variables_initializer(g)});
    const ad::FeedDict feeds = {{x, x_value}, {y, y_value}};
    const double initial = s.eval(loss, feeds).flat(0);
    for (int i = 0; i < steps; ++i) s.run({train_op}, feeds);
    const double final_loss = s.eval(loss, feeds).flat(0);
    BOOST_TEST_CONTEXT(opt.name()) {
      BOOST_TEST(final_loss < 1e-3 * initial, "loss " << initial << " -> " << final_loss);
      check_close(to_doubles(s.value(w)), {0.5, -2.0, 1.0}, 0.05, "w");
    }
  };
  ad::optim::Adam adam({.learning_rate = 0.05});
  train(adam, 600);
  ad::optim::Momentum momentum({.learning_rate = 0.01, .momentum = 0.9});
  train(momentum, 600);
  ad::optim::RMSProp rmsprop({.learning_rate = 0.01, .momentum = 0.5, .centered = true});
  train(rmsprop, 600);
  ad::optim::Adagrad adagrad({.learning_rate = 0.5});
  train(adagrad, 600);
  ad::optim::GradientDescent sgd({.learning_rate = 0.03});
  train(sgd, 600);
}

BOOST_AUTO_TEST_CASE(a_batch_norm_model_trains_with_its_constraints_and_moving_statistics) {
  BatchNormModel model(0.05);
  const ad::Array x_value = make_features(2);
  const ad::Array y_value = make_targets(x_value);
  ad::Session s(model.graph);
  s.run({ad::global_variables_initializer(model.graph)});
  const ad::FeedDict feeds = {
      {model.x, x_value}, {model.y, y_value}, {model.training, ad::Array::scalar(true)}};
  const double initial = s.eval(model.loss, feeds).flat(0);
  bool gamma_stayed_non_negative = true;
  bool beta_stayed_bounded = true;
  for (int step = 0; step < 300; ++step) {
    s.run({model.train_op}, feeds);
    for (const double gamma : to_doubles(s.value(model.gamma))) {
      gamma_stayed_non_negative = gamma_stayed_non_negative && gamma >= 0.0;
    }
    double beta_norm_squared = 0.0;
    for (const double beta : to_doubles(s.value(model.beta))) beta_norm_squared += beta * beta;
    beta_stayed_bounded = beta_stayed_bounded && std::sqrt(beta_norm_squared) <= kBetaMaxNorm;
  }
  BOOST_TEST(gamma_stayed_non_negative);
  BOOST_TEST(beta_stayed_bounded);
  const double final_loss = s.eval(model.loss, feeds).flat(0);
  // Best reachable: gamma = [2, 0, 0.5] and beta the target shift scaled to norm 0.5.
  BOOST_TEST(final_loss < 0.5 * initial, "loss " << initial << " -> " << final_loss);
  const auto gamma = to_doubles(s.value(model.gamma));
  BOOST_TEST(gamma[1] == 0.0);
  BOOST_TEST(gamma[0] == 2.0, boost::test_tools::tolerance(0.02));
  BOOST_TEST(gamma[2] == 0.5, boost::test_tools::tolerance(0.02));
  BOOST_TEST(s.value(model.global_step).data<std::int64_t>()[0] == 300);
  // Full-batch training with momentum 0.9: the moving statistics converge to the data's (the
  // biased variance: a 2-D input does not take TF's fused path).
  const auto [mean, var] = column_moments(x_value);
  check_close(to_doubles(s.value(model.moving_mean)), mean, 1e-9, "moving_mean");
  check_close(to_doubles(s.value(model.moving_variance)), var, 1e-9, "moving_variance");
}

BOOST_AUTO_TEST_CASE(a_run_resumed_from_a_checkpoint_matches_an_uninterrupted_one_bitwise) {
  const ad::Array x_value = make_features(3);
  const ad::Array y_value = make_targets(x_value);
  // Mini-batches that depend on the step, so resuming at the wrong step would show.
  const auto feeds_for = [&](const BatchNormModel& model, int step) {
    const std::int64_t rows = 32;
    const std::int64_t first = (step * 37) % (kRows - rows);
    std::vector<double> xb;
    std::vector<double> yb;
    for (std::int64_t r = first; r < first + rows; ++r) {
      for (std::int64_t c = 0; c < kFeatures; ++c) {
        xb.push_back(x_value.at({r, c}));
        yb.push_back(y_value.at({r, c}));
      }
    }
    return ad::FeedDict{{model.x, ad::Array::from<double>(xb, {rows, kFeatures})},
                        {model.y, ad::Array::from<double>(yb, {rows, kFeatures})},
                        {model.training, ad::Array::scalar(true)}};
  };
  const std::string path = temp_checkpoint("optim_training_test");

  BatchNormModel uninterrupted(0.05);
  ad::Session s1(uninterrupted.graph);
  s1.run({ad::global_variables_initializer(uninterrupted.graph)});
  const ad::Saver saver1(uninterrupted.graph);
  for (int step = 0; step < 20; ++step) {
    if (step == 10) saver1.save(s1, path);
    s1.run({uninterrupted.train_op}, feeds_for(uninterrupted, step));
  }

  BatchNormModel resumed(0.05);
  ad::Session s2(resumed.graph);
  s2.run({ad::global_variables_initializer(resumed.graph)});
  const ad::Saver saver2(resumed.graph);
  BOOST_TEST(saver2.var_list().size() == 11U);  // 4 layer, step, 2 beta powers, 2×2 slots
  saver2.restore(s2, path);
  const auto step = s2.value(resumed.global_step).data<std::int64_t>()[0];
  BOOST_TEST(step == 10);
  for (auto k = step; k < 20; ++k)
    s2.run({resumed.train_op}, feeds_for(resumed, static_cast<int>(k)));
  std::filesystem::remove(path);

  const auto vars1 = ad::global_variables(uninterrupted.graph);
  const auto vars2 = ad::global_variables(resumed.graph);
  BOOST_TEST_REQUIRE(vars1.size() == vars2.size());
  for (std::size_t i = 0; i < vars1.size(); ++i) {
    BOOST_TEST_CONTEXT(vars1[i].name()) {
      BOOST_TEST(vars1[i].name() == vars2[i].name());
      BOOST_TEST(s1.value(vars1[i]).bitwise_equal(s2.value(vars2[i])));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
