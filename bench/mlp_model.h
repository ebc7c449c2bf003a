// The MLP both MLP benchmarks train: 784-512-512-10, batch normalization after each hidden dense
// layer, relu, softmax cross-entropy, SGD with momentum 0.9, on a few random batches cycled.
// bench/mlp_bench.cpp times gradtape alone (and its peak memory, without LibTorch loaded);
// bench/mlp_vs_torch.cpp runs it beside the same model in LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "optim/momentum.h"

namespace bench::mlp {

constexpr std::int64_t kInputs = 784;
constexpr std::int64_t kHidden = 512;
constexpr std::int64_t kClasses = 10;
constexpr int kBatches = 8;  // distinct random batches, cycled
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;

struct Data {
  std::vector<std::vector<float>> features;       // kBatches x [batch, 784]
  std::vector<std::vector<std::int64_t>> labels;  // kBatches x [batch]
};

inline Data random_data(std::int64_t batch) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::int64_t> label(0, kClasses - 1);
  Data d;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<float> f(static_cast<std::size_t>(batch * kInputs));
    for (auto& v : f) v = normal(rng);
    std::vector<std::int64_t> l(static_cast<std::size_t>(batch));
    for (auto& v : l) v = label(rng);
    d.features.push_back(std::move(f));
    d.labels.push_back(std::move(l));
  }
  return d;
}

// gradtape, written as a user would: layers::dense, batch_normalization with a fed training flag,
// Momentum.minimize grouped with UPDATE_OPS. step(i) runs one training step on batch i % kBatches.
class GradtapeMlp {
 public:
  explicit GradtapeMlp(std::int64_t batch) : data_(random_data(batch)) {
    g_.set_seed(1);
    auto x = ad::placeholder(g_, ad::DType::Float32, {-1, kInputs}, "x");
    auto labels = ad::placeholder(g_, ad::DType::Int64, {-1}, "labels");
    auto training = ad::placeholder(g_, ad::DType::Bool, {}, "training");
    auto h = ad::layers::dense(x, kHidden, {.name = "fc1"});
    h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
    h = ad::layers::dense(h, kHidden, {.name = "fc2"});
    h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = training}));
    auto logits = ad::layers::dense(h, kClasses, {.name = "fc3"});
    loss_ = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
    ad::optim::Momentum optimizer({.learning_rate = kLearningRate, .momentum = kMomentum});
    train_op_ = ad::group(
        {optimizer.minimize(loss_), ad::group(g_.get_collection(ad::GraphKeys::UPDATE_OPS))});
    session_ = std::make_unique<ad::Session>(g_);
    session_->run({ad::global_variables_initializer(g_)});
    for (int b = 0; b < kBatches; ++b) {
      feeds_.push_back({{x, ad::Array::from(data_.features[b], {batch, kInputs})},
                        {labels, ad::Array::from(data_.labels[b], {batch})},
                        {training, ad::Array::scalar(true)}});
    }
  }

  // One training step; returns the loss when asked (fetching it costs a little).
  double step(int i, bool want_loss) {
    const auto& feed = feeds_[static_cast<std::size_t>(i % kBatches)];
    if (!want_loss) {
      (void)session_->run({train_op_}, feed);
      return 0.0;
    }
    return static_cast<double>(session_->run({loss_, train_op_}, feed)[0].item<float>());
  }

 private:
  Data data_;
  ad::Graph g_;
  ad::Tensor loss_;
  ad::Tensor train_op_;
  std::unique_ptr<ad::Session> session_;
  std::vector<ad::FeedDict> feeds_;
};

}  // namespace bench::mlp
