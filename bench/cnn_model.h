// The convnets both CNN benchmarks train, batch 64 of 1x28x28 random images, NCHW or NHWC:
//   small    conv3x3 1->32 + BN + relu, conv3x3 32->64 + BN + relu, global average pool,
//            dense 64->10, SGD with momentum 0.9
//   fashion  fashion_cnn --batch-norm: conv5x5 1->32 + BN + relu + pool 2x2, conv5x5 32->64 + BN +
//            relu + pool 2x2, dense 3136->1024 + relu, dropout 0.4, dense 10, SGD with momentum
// bench/cnn_bench.cpp times gradtape alone; bench/cnn_vs_torch.cpp runs it beside LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "autodiff/autodiff.h"
#include "layers/layers.h"
#include "optim/momentum.h"

namespace bench::cnn {

constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kSide = 28;
constexpr int kBatches = 4;
constexpr int kClasses = 10;
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;

enum class Net { kSmall, kFashion };

inline const char* net_name(Net net) { return net == Net::kSmall ? "small CNN" : "Fashion BN net"; }

// Multiply-adds x 2 of one training step: per layer, forward + weight gradient, plus the input
// gradient for every layer after the first.
inline double step_flops(Net net) {
  const double b = kBatch;
  const auto conv = [&](double out_pixels, double k, double c, double f, bool first) {
    return 2.0 * b * out_pixels * k * k * c * f * (first ? 2 : 3);
  };
  if (net == Net::kSmall) {
    return conv(28 * 28, 3, 1, 32, true) + conv(28 * 28, 3, 32, 64, false) + 2.0 * b * 64 * 10 * 3;
  }
  return conv(28 * 28, 5, 1, 32, true) + conv(14 * 14, 5, 32, 64, false) +
         2.0 * b * 3136 * 1024 * 3 + 2.0 * b * 1024 * 10 * 3;
}

struct Data {
  std::vector<std::vector<float>> images;  // [kBatch, 1, 28, 28] = [kBatch, 28, 28, 1]
  std::vector<std::vector<std::int64_t>> labels;
};

inline Data random_data() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<std::int64_t> label(0, kClasses - 1);
  Data d;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<float> x(static_cast<std::size_t>(kBatch * kSide * kSide));
    for (auto& v : x) v = normal(rng);
    std::vector<std::int64_t> y(static_cast<std::size_t>(kBatch));
    for (auto& v : y) v = label(rng);
    d.images.push_back(std::move(x));
    d.labels.push_back(std::move(y));
  }
  return d;
}

class GradtapeNet {
 public:
  GradtapeNet(Net net, bool nchw) : data_(random_data()) {
    g_.set_seed(1);
    const char* format = nchw ? "channels_first" : "channels_last";
    const int axis = nchw ? 1 : 3;
    x_ = ad::placeholder(
        g_, ad::DType::Float32,
        nchw ? ad::Shape{kBatch, 1, kSide, kSide} : ad::Shape{kBatch, kSide, kSide, 1}, "x");
    labels_ = ad::placeholder(g_, ad::DType::Int64, {kBatch}, "labels");
    const bool small = net == Net::kSmall;
    auto block = [&](const ad::Tensor& in, std::int64_t filters) {
      auto h = ad::layers::conv2d(in, filters, small ? 3 : 5,
                                  {.padding = "same", .data_format = format, .use_bias = false});
      h = ad::relu(ad::layers::batch_normalization(
          h, {.axis = axis, .momentum = 0.9, .epsilon = 1e-3, .training = true}));
      return small ? h : ad::layers::max_pooling2d(h, 2, 2, {.data_format = format});
    };
    auto h = block(block(x_, 32), 64);
    if (small) {
      h = ad::reduce_mean(h, nchw ? std::vector<int>{2, 3} : std::vector<int>{1, 2});
    } else {
      h = ad::layers::flatten(h, {.data_format = format});
      h = ad::layers::dense(h, 1024, {.activation = ad::relu});
      h = ad::layers::dropout(h, {.rate = 0.4, .training = true});
    }
    const auto logits = ad::layers::dense(h, kClasses);
    loss_ = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels_, logits));
    ad::optim::Momentum sgd({.learning_rate = kLearningRate, .momentum = kMomentum});
    train_op_ =
        ad::group({sgd.minimize(loss_), ad::group(g_.get_collection(ad::GraphKeys::UPDATE_OPS))});
    session_ = std::make_unique<ad::Session>(g_);
    session_->run({ad::global_variables_initializer(g_)});
    const ad::Shape shape = x_.shape();
    for (int i = 0; i < kBatches; ++i) {
      xs_.push_back(ad::Array::from<float>(data_.images[static_cast<std::size_t>(i)], shape));
      ys_.push_back(
          ad::Array::from<std::int64_t>(data_.labels[static_cast<std::size_t>(i)], {kBatch}));
    }
  }

  double step(int i, bool want_loss) {
    const auto b = static_cast<std::size_t>(i % kBatches);
    const ad::FeedDict feeds{{x_, xs_[b]}, {labels_, ys_[b]}};
    if (!want_loss) {
      (void)session_->run({train_op_}, feeds);
      return 0.0;
    }
    return session_->run({train_op_, loss_}, feeds)[1].item<float>();
  }

 private:
  Data data_;
  ad::Graph g_;
  ad::Tensor x_, labels_, loss_, train_op_;
  std::unique_ptr<ad::Session> session_;
  std::vector<ad::Array> xs_, ys_;
};

}  // namespace bench::cnn
