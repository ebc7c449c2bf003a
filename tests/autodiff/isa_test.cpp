// Runtime CPU dispatch: the hot kernels give bitwise the same results with every instruction set
// this CPU has (SSE2, AVX2, AVX-512, forced through ad::set_isa), on shapes that reach the vector
// loops, their tails and the multi-threaded paths; and the set chosen at start-up follows
// GRADTAPE_ISA. Values against independent references are the other suites' business: these
// compare the sets with each other.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/cpu.h"
#include "layers/batch_normalization.h"
#include "layers/layers.h"
#include "optim/adam.h"
#include "optim/gradient_descent.h"
#include "optim/momentum.h"

namespace {

constexpr ad::Isa kAll[] = {ad::Isa::kSse2, ad::Isa::kAvx2, ad::Isa::kAvx512};

// Restores the set in effect when the test started.
struct IsaGuard {
  ad::Isa saved = ad::isa();
  IsaGuard() = default;
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
  ~IsaGuard() { ad::set_isa(saved); }
};

// Runs `compute` under every set the CPU has and checks that each result is bitwise the SSE2
// one; a set the CPU lacks is skipped with a note (all but sse2 in a GRADTAPE_NATIVE build, whose
// three kernel copies are the same code).
void expect_same_bits_on_every_isa(const std::string& what,
                                   const std::function<std::vector<ad::Array>()>& compute) {
  const IsaGuard guard;
  std::vector<ad::Array> reference;
  for (const ad::Isa isa : kAll) {
    if (isa > ad::best_isa()) {
      std::cout << "isa_test: " << what << ": no " << ad::isa_name(isa)
                << " on this CPU or in this build, skipped\n";
      continue;
    }
    BOOST_TEST_REQUIRE((ad::set_isa(isa) == isa));
    const std::vector<ad::Array> result = compute();
    if (isa == ad::Isa::kSse2) {
      reference = result;
      continue;
    }
    BOOST_TEST_REQUIRE(result.size() == reference.size());
    for (std::size_t i = 0; i < result.size(); ++i) {
      BOOST_TEST(result[i].bitwise_equal(reference[i]),
                 what << ": output " << i << " differs between sse2 and " << ad::isa_name(isa));
    }
  }
}

// Normal values with a few specials (NaN, infinities, signed zeros, a subnormal) mixed in.
ad::Array random_array(const ad::Shape& shape, ad::DType dtype, std::uint32_t seed,
                       bool specials = false, double mean = 0.5, double stddev = 2.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(mean, stddev);
  std::vector<double> v(static_cast<std::size_t>(shape.num_elements()));
  for (auto& e : v) e = normal(rng);
  if (specials && v.size() > 16) {
    v[3] = std::numeric_limits<double>::quiet_NaN();
    v[5] = std::numeric_limits<double>::infinity();
    v[8] = -std::numeric_limits<double>::infinity();
    v[11] = 0.0;
    v[12] = -0.0;
    v[15] = 1e-40;
  }
  return ad::Array::from(v, shape).astype(dtype);
}

const ad::DType kFloating[] = {ad::DType::Float32, ad::DType::Float64};

std::string label(const std::string& what, ad::DType dtype, const ad::Shape& shape) {
  return what + " " + (dtype == ad::DType::Float32 ? "float32 " : "float64 ") + shape.to_string();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(isa_test)

BOOST_AUTO_TEST_CASE(the_start_up_choice_follows_the_cpu_capped_by_gradtape_isa) {
  // The CTest variants run this suite with GRADTAPE_ISA set; without it the best set is used.
  const char* env = std::getenv("GRADTAPE_ISA");
  ad::Isa expected = ad::best_isa();
  if (env != nullptr) {
    for (const ad::Isa isa : kAll) {
      if (ad::isa_name(isa) == env && isa < expected) expected = isa;
    }
  }
  BOOST_TEST(ad::isa_name(ad::isa()) == ad::isa_name(expected));
  std::cout << "isa_test: best " << ad::isa_name(ad::best_isa()) << ", in effect "
            << ad::isa_name(ad::isa()) << "\n";
}

BOOST_AUTO_TEST_CASE(set_isa_caps_at_what_the_cpu_has) {
  const IsaGuard guard;
  BOOST_TEST((ad::set_isa(ad::Isa::kSse2) == ad::Isa::kSse2));
  BOOST_TEST((ad::isa() == ad::Isa::kSse2));
  // Asking for more than the CPU has gives the best it has.
  BOOST_TEST((ad::set_isa(ad::Isa::kAvx512) == ad::best_isa()));
  BOOST_TEST((ad::isa() == ad::best_isa()));
  BOOST_TEST(ad::isa_name(ad::Isa::kAvx2) == "avx2");
}

BOOST_AUTO_TEST_CASE(batch_norm_training_forward_and_backward) {
  struct Case {
    ad::Shape shape;
    int axis;
  };
  // NCHW with long runs (segmented path), NCHW with short runs, NHWC (row tiles), and the
  // (256, 1024) matrix of the benchmark (multi-threaded).
  const Case cases[] = {
      {{4, 8, 17, 19}, 1}, {{2, 3, 5, 7}, 1}, {{8, 9, 10, 24}, 3}, {{256, 1024}, -1}};
  for (const Case& c : cases) {
    for (const ad::DType dtype : kFloating) {
      ad::Graph g;
      auto x = ad::placeholder(g, dtype, c.shape, "x");
      auto dy = ad::placeholder(g, dtype, c.shape, "dy");
      ad::layers::BatchNormalization bn({.axis = c.axis, .momentum = 0.9});
      auto y = bn(x, true);
      const auto grads = ad::gradients({y}, {x, bn.gamma(), bn.beta()}, {dy});
      const ad::FeedDict feeds{{x, random_array(c.shape, dtype, 1)},
                               {dy, random_array(c.shape, dtype, 2, false, 0.0, 1.0)}};
      expect_same_bits_on_every_isa(label("batch norm", dtype, c.shape), [&] {
        ad::Session s(g);
        s.run({ad::global_variables_initializer(g)});
        std::vector<ad::Tensor> fetches{y, grads[0], grads[1], grads[2]};
        auto out = s.run(fetches, feeds);
        // The moving statistics' update (the layer's UPDATE_OPS).
        s.run({ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))}, feeds);
        for (const auto& v : ad::global_variables(g)) out.push_back(s.value(v));
        return out;
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(elementwise_arithmetic_and_activations) {
  // Large enough for the threaded loops, odd-sized for the vector tails; a broadcast row.
  const ad::Shape shapes[] = {{1001}, {200, 257}};
  for (const ad::Shape& shape : shapes) {
    for (const ad::DType dtype : kFloating) {
      ad::Graph g;
      const ad::Shape row{shape[shape.rank() - 1]};
      auto a = ad::constant(g, random_array(shape, dtype, 3, true));
      auto b = ad::constant(g, random_array(shape, dtype, 4, true));
      auto r = ad::constant(g, random_array(row, dtype, 5));
      auto s = ad::scalar(g, 0.75, dtype);
      const std::vector<ad::Tensor> fetches{
          a + b, a - r, a * s, s / a, a / b, ad::maximum(a, b), ad::minimum(r, b),
          ad::squared_difference(a, r), -a, ad::abs(a), ad::sqrt(ad::abs(a)), ad::rsqrt(a),
          ad::square(a), ad::reciprocal(b), ad::relu(a), ad::gradients({ad::relu(a)}, {a}, {b})[0],
          ad::add_n(std::vector<ad::Tensor>{a, b, a * s}),
          // Broadcast gradients (sum_to): onto a row, onto a scalar.
          ad::gradients({a * r}, {r}, {b})[0], ad::gradients({a * s}, {s}, {b})[0]};
      expect_same_bits_on_every_isa(label("elementwise", dtype, shape), [&] {
        ad::Session session(g);
        return session.run(fetches);
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(reductions) {
  const ad::Shape shapes[] = {{300, 257}, {3, 40000}, {6, 5, 7, 9}};
  for (const ad::Shape& shape : shapes) {
    for (const ad::DType dtype : kFloating) {
      ad::Graph g;
      auto x = ad::constant(g, random_array(shape, dtype, 6));
      std::vector<ad::Tensor> fetches;
      const std::vector<std::vector<int>> axes_list = {{}, {0}, {1}, {0, shape.rank() - 1}};
      for (const auto& axes : axes_list) {
        fetches.push_back(ad::reduce_sum(x, axes));
        fetches.push_back(ad::reduce_mean(x, axes));
        fetches.push_back(ad::reduce_max(x, axes));
        fetches.push_back(ad::reduce_min(x, axes));
      }
      expect_same_bits_on_every_isa(label("reductions", dtype, shape), [&] {
        ad::Session session(g);
        return session.run(fetches);
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(softmax_and_cross_entropy) {
  const std::int64_t batch = 130;
  const std::int64_t classes = 301;
  for (const ad::DType dtype : kFloating) {
    ad::Graph g;
    auto logits = ad::constant(g, random_array({batch, classes}, dtype, 7, false, 0.0, 4.0));
    std::vector<std::int64_t> label_values(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < label_values.size(); ++i)
      label_values[i] = static_cast<std::int64_t>((i * 37) % classes);
    auto labels = ad::constant(g, ad::Array::vector(label_values));
    auto dense_labels = ad::nn::softmax(ad::constant(g, random_array({batch, classes}, dtype, 8)));
    auto sparse = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits);
    auto dense = ad::nn::softmax_cross_entropy_with_logits(dense_labels, logits);
    const std::vector<ad::Tensor> fetches{ad::nn::softmax(logits),
                                          ad::nn::log_softmax(logits),
                                          ad::nn::softmax(logits, 0),
                                          ad::nn::log_softmax(logits, 0),
                                          sparse,
                                          dense,
                                          ad::gradients({ad::reduce_mean(sparse)}, {logits})[0],
                                          ad::gradients({ad::reduce_mean(dense)}, {logits})[0]};
    expect_same_bits_on_every_isa(label("softmax", dtype, {batch, classes}), [&] {
      ad::Session session(g);
      return session.run(fetches);
    });
  }
}

BOOST_AUTO_TEST_CASE(optimizer_updates) {
  for (const ad::DType dtype : kFloating) {
    expect_same_bits_on_every_isa(label("optimizers", dtype, {97, 353}), [&] {
      ad::Graph g;
      const ad::Shape shape{97, 353};
      auto grad = ad::constant(g, random_array(shape, dtype, 9, false, 0.0, 1.0));
      std::vector<ad::Variable> vars;
      for (int i = 0; i < 4; ++i) {
        const ad::Array initial = random_array(shape, dtype, 10 + static_cast<std::uint32_t>(i));
        ad::VariableOptions options;
        options.shape = shape;
        options.dtype = dtype;
        options.initializer = [initial](ad::Graph& graph, const ad::Shape&, ad::DType) {
          return ad::constant(graph, initial);
        };
        vars.push_back(ad::Variable::create(g, "w" + std::to_string(i), options));
      }
      ad::optim::GradientDescent sgd({.learning_rate = 0.1});
      ad::optim::Momentum momentum({.learning_rate = 0.1, .momentum = 0.9});
      ad::optim::Momentum nesterov({.learning_rate = 0.1, .momentum = 0.9, .use_nesterov = true});
      ad::optim::Adam adam({.learning_rate = 0.01});
      const auto step = ad::group(
          {sgd.apply_gradients({{grad, vars[0]}}), momentum.apply_gradients({{grad, vars[1]}}),
           nesterov.apply_gradients({{grad, vars[2]}}), adam.apply_gradients({{grad, vars[3]}})});
      ad::Session s(g);
      s.run({ad::global_variables_initializer(g)});
      for (int i = 0; i < 3; ++i) s.run({step});
      std::vector<ad::Array> out;
      for (const auto& v : ad::global_variables(g)) out.push_back(s.value(v));
      return out;
    });
  }
}

BOOST_AUTO_TEST_CASE(training_steps_through_a_session) {
  // A small MLP as a user writes it: dense, batch norm, relu, sparse cross-entropy, momentum.
  expect_same_bits_on_every_isa("mlp training", [] {
    ad::Graph g;
    g.set_seed(3);
    const std::int64_t batch = 64;
    auto x = ad::constant(g, random_array({batch, 100}, ad::DType::Float32, 11));
    std::vector<std::int64_t> label_values(static_cast<std::size_t>(batch));
    for (std::size_t i = 0; i < label_values.size(); ++i)
      label_values[i] = static_cast<std::int64_t>(i % 10);
    auto labels = ad::constant(g, ad::Array::vector(label_values));
    auto h = ad::layers::dense(x, 96, {.name = "fc1"});
    h = ad::relu(ad::layers::batch_normalization(h, {.momentum = 0.9, .training = true}));
    auto logits = ad::layers::dense(h, 10, {.name = "fc2"});
    auto loss = ad::reduce_mean(ad::nn::sparse_softmax_cross_entropy_with_logits(labels, logits));
    ad::optim::Momentum opt({.learning_rate = 0.05, .momentum = 0.9});
    auto train =
        ad::group({opt.minimize(loss), ad::group(g.get_collection(ad::GraphKeys::UPDATE_OPS))});
    ad::Session s(g);
    s.run({ad::global_variables_initializer(g)});
    std::vector<ad::Array> out;
    for (int i = 0; i < 4; ++i) out.push_back(s.run({loss, train})[0]);
    for (const auto& v : ad::global_variables(g)) out.push_back(s.value(v));
    return out;
  });
}

BOOST_AUTO_TEST_SUITE_END()
