// The session's memory cap counts kernel scratch: a convolution whose temporary buffers alone do
// not fit is a ResourceExhaustedError naming the op and the node before those buffers exist (the
// peak RSS stays flat), the session survives and the same convolution runs under a larger cap. An
// allocation failure inside any kernel names the node. Long loops (a million runs of a small graph,
// 10,000 Adam steps) keep a flat byte count, with and without a cap.
#include <sys/resource.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/internal/storage_stats.h"
#include "autodiff/kernel.h"
#include "layers/layers.h"
#include "optim/adam.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// The process's peak resident set so far, in bytes (getrusage reports KiB on Linux).
std::size_t peak_rss() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::size_t>(usage.ru_maxrss) * 1024;
}

// conv2d of a fed [1, 256, 256, 16] image (8 MiB in float64) with a 5x5x16x1 filter of ones, same
// padding: the output is 512 KiB, but im2col needs 65536 positions x 400 taps = 200 MiB of float64.
struct BigConv {
  ad::Graph g;
  ad::Tensor x;
  ad::Tensor y;
  explicit BigConv(ad::DType dtype, ad::DataFormat format = ad::DataFormat::kChannelsLast) {
    const bool nchw = format == ad::DataFormat::kChannelsFirst;
    x = ad::placeholder(g, dtype, nchw ? ad::Shape{1, 16, 256, 256} : ad::Shape{1, 256, 256, 16},
                        "x");
    const auto w = ad::constant(g, ad::Array::full(dtype, {5, 5, 16, 1}, 1.0));
    y = ad::nn::conv2d(x, w, {.padding = ad::Padding::kSame, .data_format = format});
  }
  [[nodiscard]] ad::FeedDict feeds() const {
    return {{x, ad::Array::full(x.dtype(), x.shape(), 1.0)}};
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(memory_test)

// First in the suite, so the peak RSS before it is the process's start-up peak.
BOOST_AUTO_TEST_CASE(conv2d_scratch_beyond_the_cap_is_refused_before_it_is_allocated) {
  BigConv conv(ad::DType::Float64);
  const auto feeds = conv.feeds();
  ad::Session s(conv.g, {.memory_limit_bytes = 8 * kMiB});
  const std::size_t before = peak_rss();
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(conv.y, feeds), ad::ResourceExhaustedError,
      (MessageHas{{"Conv2D 'Conv2D'", "im2col", "memory limit of 8388608", "209715200"}}));
  const std::size_t after = peak_rss();
  BOOST_TEST_MESSAGE("peak RSS " << before / kMiB << " MiB before, " << after / kMiB
                                 << " MiB after the refused conv2d (8 MiB cap)");
  BOOST_TEST(after - before < 16 * kMiB);
  // The session survives: a 1x1 convolution (no im2col) of the same input runs in it.
  const auto w1 = ad::constant(conv.g, ad::Array::full(ad::DType::Float64, {1, 1, 16, 1}, 0.5));
  const auto y1 = ad::nn::conv2d(conv.x, w1);
  BOOST_TEST(s.eval(y1, feeds).data<double>()[12345] == 8.0);
  // Under a larger cap the same convolution runs; with all-ones operands an output counts the
  // in-bounds taps: 5 x 5 x 16 = 400 inside, 3 x 3 x 16 = 144 in a corner, 3 x 5 x 16 on an edge.
  ad::Session large(conv.g, {.memory_limit_bytes = 256 * kMiB});
  const auto y = large.eval(conv.y, feeds);
  BOOST_TEST(y.data<double>()[0] == 144.0);
  BOOST_TEST(y.data<double>()[5] == 240.0);
  BOOST_TEST(y.data<double>()[100 * 256 + 100] == 400.0);
}

// The two gradient ops of conv2d, fed an all-ones output gradient: their column matrices are the
// forward's 200 MiB.
BOOST_AUTO_TEST_CASE(conv2d_gradients_count_their_scratch) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {1, 256, 256, 16}, "x");
  auto dy = ad::placeholder(g, ad::DType::Float64, {1, 256, 256, 1}, "dy");
  const auto w = ad::constant(g, ad::Array::full(ad::DType::Float64, {5, 5, 16, 1}, 1.0));
  const ad::Conv2DParams same{.padding = ad::Padding::kSame};
  const auto dx = ad::nn::conv2d_backprop_input(ad::shape(x), w, dy, same);
  const auto dw = ad::nn::conv2d_backprop_filter(x, {5, 5, 16, 1}, dy, same);
  const ad::FeedDict feeds{{x, ad::Array::full(ad::DType::Float64, {1, 256, 256, 16}, 1.0)},
                           {dy, ad::Array::full(ad::DType::Float64, {1, 256, 256, 1}, 1.0)}};
  ad::Session s(g, {.memory_limit_bytes = 24 * kMiB});
  BOOST_CHECK_EXCEPTION((void)s.eval(dx, feeds), ad::ResourceExhaustedError,
                        (MessageHas{{"Conv2DBackpropInput '", "im2col", "memory limit"}}));
  BOOST_CHECK_EXCEPTION((void)s.eval(dw, feeds), ad::ResourceExhaustedError,
                        (MessageHas{{"Conv2DBackpropFilter '", "im2col", "memory limit"}}));
  ad::Session large(g, {.memory_limit_bytes = 256 * kMiB});
  // An input position inside receives one per filter tap (25); a filter tap sums dy * x over
  // the output positions where it reads inside the image: all 256 x 256 for the centre tap,
  // 254 x 254 for a corner one.
  BOOST_TEST(large.eval(dx, feeds).data<double>()[(100 * 256 + 100) * 16] == 25.0);
  const auto filter = large.eval(dw, feeds);
  BOOST_TEST(filter.data<double>()[(2 * 5 + 2) * 16] == 256.0 * 256.0);
  BOOST_TEST(filter.data<double>()[0] == 254.0 * 254.0);
}

BOOST_AUTO_TEST_CASE(channels_first_and_float32_convolutions_are_capped_too) {
  for (const auto dtype : {ad::DType::Float32, ad::DType::Float64}) {
    BigConv conv(dtype, ad::DataFormat::kChannelsFirst);
    // The output is 256 KiB (float32) or 512 KiB: 1 MiB holds it, not the convolution's buffers.
    ad::Session s(conv.g, {.memory_limit_bytes = kMiB});
    BOOST_CHECK_EXCEPTION((void)s.eval(conv.y, conv.feeds()), ad::ResourceExhaustedError,
                          (MessageHas{{"Conv2D 'Conv2D'", "scratch for", "memory limit"}}));
    ad::Session large(conv.g, {.memory_limit_bytes = 256 * kMiB});
    const auto y = large.eval(conv.y, conv.feeds());
    BOOST_TEST(y.astype(ad::DType::Float64).data<double>()[100 * 256 + 100] == 400.0);
  }
}

// Pooled scratch counts against the cap, and is let go when an output needs the room.
BOOST_AUTO_TEST_CASE(pooled_scratch_makes_room_for_later_outputs) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {1, 32, 32, 16}, "x");  // 128 KiB
  const auto w = ad::constant(g, ad::Array::full(ad::DType::Float64, {5, 5, 16, 1}, 1.0));
  const auto y = ad::nn::conv2d(x, w, {.padding = ad::Padding::kSame});  // im2col: 3.125 MiB
  auto big = ad::placeholder(g, ad::DType::Float64, {-1}, "big");
  const auto e = ad::exp(big);
  ad::Session s(g, {.memory_limit_bytes = 4 * kMiB});
  const ad::FeedDict feeds{{x, ad::Array::full(ad::DType::Float64, {1, 32, 32, 16}, 1.0)}};
  // Position (2, 2) has its whole 5 x 5 window inside: 400; (0, 1) has 3 x 4 taps: 192.
  for (int i = 0; i < 5; ++i) BOOST_TEST(s.eval(y, feeds).data<double>()[2 * 32 + 2] == 400.0);
  BOOST_TEST(s.eval(y, feeds).data<double>()[1] == 192.0);
  // A steady state allocates only the fetched result (the caller keeps it): the scratch is
  // reused from the pool.
  const auto allocations = s.stats().buffer_allocations;
  (void)s.eval(y, feeds);
  BOOST_TEST(s.stats().buffer_allocations == allocations + 1);
  // 3.5 MiB of output fits only once the pooled scratch is freed.
  const auto out = s.eval(e, {{big, ad::Array::full(ad::DType::Float64, {458752}, 0.0)}});
  BOOST_TEST(out.data<double>()[458751] == 1.0);
}

namespace {
// An op whose kernel builds an Array directly (not through allocate_output) far too large for
// memory: what a kernel's own temporary does when memory runs out.
void huge_temporary_kernel(ad::KernelContext& ctx) {
  const ad::Array temporary(ad::DType::Float32, {std::int64_t{1} << 45});
  ctx.allocate_output(0, {}).mutable_data<float>()[0] = temporary.data<float>()[0];
}
const ad::OpDef kHugeTemporaryOp{.name = "HugeTemporary", .kernel = huge_temporary_kernel};
}  // namespace

BOOST_AUTO_TEST_CASE(an_allocation_failure_inside_a_kernel_names_the_op_and_node) {
  ad::Graph g;
  const auto t = g.record1(kHugeTemporaryOp, {}, {ad::DType::Float32, ad::Shape{}}, {});
  auto x = ad::placeholder(g, ad::DType::Int64, {2}, "dims");
  const auto filled = ad::fill(x, 1.0);
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(
      (void)s.eval(t), ad::ResourceExhaustedError,
      (MessageHas{{"HugeTemporary '", "out of memory", "float32[35184372088832]"}}));
  // An output too large for memory, in a session without a cap.
  const auto dims = ad::Array::from<std::int64_t>({std::int64_t{1} << 43, 16}, {2});
  BOOST_CHECK_EXCEPTION((void)s.eval(filled, {{x, dims}}), ad::ResourceExhaustedError,
                        (MessageHas{{"Fill '", "out of memory", "float32[8796093022208, 16]"}}));
  BOOST_TEST(s.eval(filled, {{x, ad::Array::from<std::int64_t>({2, 3}, {2})}}).size() == 6);
}

// A million runs feeding a vector and fetching its exp under a cap: the pool and the live bytes
// stay where the first thousand runs left them.
BOOST_AUTO_TEST_CASE(a_million_capped_runs_keep_a_flat_byte_count) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1}, "x");
  const auto y = ad::exp(x) + 1.0;
  ad::Session s(g, {.memory_limit_bytes = 64 * 1024});
  const ad::FeedDict feeds{{x, ad::Array::full(ad::DType::Float32, {5}, 0.0)}};
  for (int i = 0; i < 1000; ++i) (void)s.eval(y, feeds);
  // Each run allocates exactly its fetched result (which the caller then frees), nothing else.
  const auto allocations = s.stats().buffer_allocations;
  const auto live = ad::detail::storage_bytes_in_use();
  constexpr int kRuns = 1'000'000;
  float last = 0;
  for (int i = 0; i < kRuns; ++i) last = s.eval(y, feeds).data<float>()[4];
  BOOST_TEST(last == 2.0f);
  BOOST_TEST(s.stats().buffer_allocations == allocations + kRuns);
  BOOST_TEST(ad::detail::storage_bytes_in_use() == live);
}

// 10,000 Adam steps of a small dense layer, fetching the loss each step, under a cap sized for the
// working set: no step is refused and the byte counts stay flat after the first hundred.
BOOST_AUTO_TEST_CASE(ten_thousand_adam_steps_keep_a_flat_byte_count) {
  ad::Graph g;
  g.set_seed(5);
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 8}, "x");
  const auto logits = ad::layers::dense(x, 3, {.name = "fc"});
  const auto loss = ad::reduce_mean(ad::square(logits));
  auto step = ad::Variable::create(g, "global_step",
                                   {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ad::optim::Adam adam({.learning_rate = 1e-3});
  const auto train_op = adam.minimize(loss, step);
  ad::Session s(g, {.memory_limit_bytes = kMiB});
  s.run({ad::global_variables_initializer(g)});
  const ad::FeedDict feeds{{x, ad::testing::random_normal({16, 8}, 9).astype(ad::DType::Float32)}};
  for (int i = 0; i < 100; ++i) (void)s.run({train_op, loss, logits}, feeds);
  // Each step allocates exactly its two fetched results (freed by the caller), nothing else.
  const auto allocations = s.stats().buffer_allocations;
  const auto live = ad::detail::storage_bytes_in_use();
  for (int i = 0; i < 9900; ++i) (void)s.run({train_op, loss, logits}, feeds);
  BOOST_TEST(s.value(step).item<std::int64_t>() == 10000);
  BOOST_TEST(s.stats().buffer_allocations == allocations + 2 * 9900);
  BOOST_TEST(ad::detail::storage_bytes_in_use() == live);
}

BOOST_AUTO_TEST_SUITE_END()
