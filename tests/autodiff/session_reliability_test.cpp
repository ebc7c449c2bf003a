// Session robustness: forged or stale handles are ValueErrors at every public entry (never a
// crash), a variable's handle cannot be fed, an empty Tensor has no shape, the buffer pool keeps a
// flat byte count over a million runs that copy a variable on write, and the memory cap counts
// what is alive per session (fetched results until freed, concurrent runs together).
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/internal/storage_stats.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(session_reliability_test)

BOOST_AUTO_TEST_CASE(forged_handles_are_value_errors_and_the_session_survives) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  auto y = x * 2.0;
  ad::Session s(g);
  const ad::FeedDict feeds{{x, ad::Array::from<float>({1.f, 2.f}, {2})}};
  BOOST_CHECK_EXCEPTION(s.eval(ad::Tensor(&g, 1000000, 0)), ad::ValueError,
                        (MessageHas{{"node 1000000 does not exist"}}));
  BOOST_CHECK_EXCEPTION(s.eval(ad::Tensor(&g, -5, 0)), ad::ValueError,
                        (MessageHas{{"node -5 does not exist"}}));
  BOOST_CHECK_EXCEPTION(s.eval(ad::Tensor(&g, y.node_index(), 3), feeds), ad::ValueError,
                        (MessageHas{{"1 outputs", "output 3"}}));
  BOOST_CHECK_EXCEPTION(s.run({y}, {{ad::Tensor(&g, 77, 0), ad::Array::scalar(1.0f)}}),
                        ad::ValueError, (MessageHas{{"node 77"}}));
  BOOST_CHECK_EXCEPTION((void)s.run_count(ad::Tensor(&g, 99, -1)), ad::ValueError,
                        (MessageHas{{"node 99"}}));
  BOOST_CHECK_EXCEPTION((void)s.run_count(ad::Tensor()), ad::ValueError,
                        (MessageHas{{"empty Tensor"}}));
  ad::Graph other;
  auto foreign = ad::placeholder(other, ad::DType::Float32, {2}, "foreign");
  BOOST_CHECK_EXCEPTION((void)s.run_count(foreign), ad::ValueError,
                        (MessageHas{{"another graph"}}));
  BOOST_CHECK_EXCEPTION((void)(y + ad::Tensor(&g, 500, 0)), ad::ValueError,
                        (MessageHas{{"node 500"}}));
  BOOST_CHECK_EXCEPTION((void)ad::gradients(y, {ad::Tensor(&g, 500, 0)}), ad::ValueError,
                        (MessageHas{{"node 500"}}));
  // Still usable.
  BOOST_TEST(s.eval(y, feeds).data<float>()[1] == 4.f);
}

BOOST_AUTO_TEST_CASE(an_empty_tensor_has_no_shape_or_dtype) {
  const ad::Tensor empty;
  BOOST_CHECK_EXCEPTION((void)empty.shape(), ad::ValueError, (MessageHas{{"empty"}}));
  BOOST_CHECK_EXCEPTION((void)empty.dtype(), ad::ValueError, (MessageHas{{"empty"}}));
  BOOST_TEST(empty.name() == "<empty>");
}

BOOST_AUTO_TEST_CASE(a_variable_handle_cannot_be_fed) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {2}});
  auto read = v.value() * 1.0;
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_CHECK_EXCEPTION(s.eval(read, {{v.handle(), ad::Array::from<float>({5.f, 6.f}, {2})}}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"cannot feed variable handle", "'v:0'", "set_value"}}));
  BOOST_TEST(s.eval(read).data<float>()[0] == 0.f);
}

// Each run reads v (sharing its storage), then adds to it while the read is still to be used, so
// the update copies v's 12 bytes first; the read's block, released after its last reader, is of no
// size the pool serves and must be freed, not pooled.
BOOST_AUTO_TEST_CASE(a_million_copy_on_write_runs_keep_a_flat_byte_count) {
  ad::Graph g;
  auto v = ad::Variable::create(g, "v", {.shape = {3}});
  auto read = v.value();
  auto update = v.assign_add(ad::constant(g, ad::Array::from<float>({1.f, 1.f, 1.f}, {3})));
  auto later = read * 2.0;  // recorded, so run, after the update: the read is alive meanwhile
  const auto step = ad::group({update, later});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  for (int i = 0; i < 1000; ++i) (void)s.run({step});
  const auto warm = s.stats().buffer_bytes;
  const auto in_use = ad::detail::storage_bytes_in_use();
  const auto start = std::chrono::steady_clock::now();
  constexpr int kRuns = 1'000'000;
  for (int i = 0; i < kRuns; ++i) (void)s.run({step});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST_MESSAGE(kRuns << " runs in " << seconds << " s");
  BOOST_TEST(s.stats().buffer_bytes == warm);
  BOOST_TEST(ad::detail::storage_bytes_in_use() == in_use);
  BOOST_TEST(s.value(v).data<float>()[2] == 1001000.f);
}

namespace {
// exp of a fed float32 vector of n elements: one pooled output of 4n bytes per run.
struct ExpGraph {
  ad::Graph g;
  ad::Tensor x = ad::placeholder(g, ad::DType::Float32, {-1}, "x");
  ad::Tensor y = ad::exp(x);
  ad::FeedDict feeds(std::int64_t n) const {
    return {{x, ad::Array::full(ad::DType::Float32, {n}, 0.0)}};
  }
};
constexpr std::size_t kMiB = 1 << 20;
}  // namespace

BOOST_AUTO_TEST_CASE(fetched_results_count_against_the_cap_until_freed) {
  ExpGraph e;
  ad::Session s(e.g, {.memory_limit_bytes = kMiB});
  const auto quarter = e.feeds(65536);  // 256 KiB results
  for (int i = 0; i < 50; ++i) BOOST_TEST(s.eval(e.y, quarter).data<float>()[0] == 1.f);
  std::vector<ad::Array> held;
  for (int i = 0; i < 4; ++i) held.push_back(s.eval(e.y, quarter));  // exactly 1 MiB
  BOOST_CHECK_EXCEPTION((void)s.eval(e.y, quarter), ad::ResourceExhaustedError,
                        (MessageHas{{"Exp 'Exp'", "memory limit of 1048576"}}));
  held.pop_back();
  BOOST_TEST(s.eval(e.y, quarter).size() == 65536);  // room again once one is freed
  held.clear();
  held.push_back(s.eval(e.y, e.feeds(4 * 65536 - 16)));  // almost all of it in one buffer
  BOOST_TEST(held.back().size() == 4 * 65536 - 16);
}

BOOST_AUTO_TEST_CASE(the_cap_holds_per_session_across_threads) {
  ExpGraph e;
  ad::Session s(e.g, {.memory_limit_bytes = kMiB});
  std::vector<ad::Array> held;
  for (int i = 0; i < 6; ++i) held.push_back(s.eval(e.y, e.feeds(32768)));  // 6 x 128 KiB
  bool refused = false;
  std::thread other([&] {
    try {
      (void)s.eval(e.y, e.feeds(131072));  // 512 KiB more than fits beside 768 KiB
    } catch (const ad::ResourceExhaustedError&) {
      refused = true;
    }
  });
  other.join();
  BOOST_TEST(refused);
  held.clear();
  // Four threads, 100 runs each of 64 KiB results dropped at once: never more than 4 x 64 KiB
  // alive, so nothing is refused, and every value is right.
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (s.eval(e.y, e.feeds(16384)).data<float>()[16383] != 1.f)
          ++wrong[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(wrong == std::vector<int>(4, 0), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
