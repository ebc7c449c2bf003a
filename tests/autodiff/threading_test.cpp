// The library's thread pool and thread counts (autodiff/threading.cpp): every index of a parallel
// loop runs exactly once, on several threads when asked, exceptions reach the caller, nested and
// concurrent loops work, and set_num_threads / SessionOptions change the number of threads.
#include <sched.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/internal/thread_pool.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

// Restores the process-wide thread count, whatever a case set.
struct ThreadCountGuard {
  int saved = ad::num_threads();
  ~ThreadCountGuard() { ad::set_num_threads(saved); }
};

// How many times parallel_for ran each index of [0, n).
std::vector<int> run_counts(std::int64_t n) {
  std::vector<std::atomic<int>> counts(static_cast<std::size_t>(n));
  ad::detail::parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) counts[static_cast<std::size_t>(i)].fetch_add(1);
  });
  std::vector<int> out;
  for (const auto& c : counts) out.push_back(c.load());
  return out;
}

// The distinct threads that ran a loop of `pieces` indices, each of which waits (up to 10 s) until
// `pieces` indices have started: it can only finish early when that many threads run at once.
std::set<std::thread::id> threads_running_together(int pieces) {
  std::atomic<int> started{0};
  std::mutex mutex;
  std::set<std::thread::id> ids;
  ad::detail::parallel_for(pieces, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      started.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started.load() < pieces && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      const std::lock_guard lock(mutex);
      ids.insert(std::this_thread::get_id());
    }
  });
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(threading_test)

BOOST_AUTO_TEST_CASE(every_index_runs_exactly_once) {
  const ThreadCountGuard guard;
  for (const int threads : {1, 2, 3, 4}) {
    ad::set_num_threads(threads);
    for (const std::int64_t n : {1, 2, 3, 7, 64, 1000, 100003}) {
      BOOST_TEST_CONTEXT(threads << " threads, n = " << n) {
        const auto counts = run_counts(n);
        BOOST_TEST(counts == std::vector<int>(static_cast<std::size_t>(n), 1),
                   boost::test_tools::per_element());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(pieces_run_on_as_many_threads_as_asked) {
  const ThreadCountGuard guard;
  ad::set_num_threads(1);
  BOOST_TEST(threads_running_together(1).size() == 1U);
  BOOST_TEST(*threads_running_together(1).begin() == std::this_thread::get_id());
  for (const int threads : {2, 3}) {
    ad::set_num_threads(threads);
    BOOST_TEST(threads_running_together(threads).size() == static_cast<std::size_t>(threads));
  }
  // Fewer threads after more: the extra workers stay out of the loop.
  ad::set_num_threads(2);
  std::atomic<int> concurrent{0}, most{0};
  ad::detail::parallel_for(64, [&](std::int64_t, std::int64_t) {
    const int now = concurrent.fetch_add(1) + 1;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    concurrent.fetch_sub(1);
  });
  BOOST_TEST(most.load() <= 2);
}

BOOST_AUTO_TEST_CASE(an_exception_in_a_piece_reaches_the_caller) {
  const ThreadCountGuard guard;
  for (const int threads : {1, 2, 3}) {
    ad::set_num_threads(threads);
    for (const std::int64_t bad : {0, 500, 999}) {
      BOOST_TEST_CONTEXT(threads << " threads, index " << bad << " throws") {
        std::atomic<int> ran{0};
        BOOST_CHECK_EXCEPTION(
            ad::detail::parallel_for(1000,
                                     [&](std::int64_t begin, std::int64_t end) {
                                       for (std::int64_t i = begin; i < end; ++i) {
                                         if (i == bad) {
                                           throw ad::InvalidArgumentError("piece " +
                                                                          std::to_string(i));
                                         }
                                         ran.fetch_add(1);
                                       }
                                     }),
            ad::InvalidArgumentError, (MessageHas{{"piece " + std::to_string(bad)}}));
        BOOST_TEST(ran.load() < 1000);
        // The pool is usable afterwards.
        const auto counts = run_counts(1000);
        BOOST_TEST(counts == std::vector<int>(1000, 1), boost::test_tools::per_element());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(nested_loops_run_inline_on_the_piece_s_thread) {
  const ThreadCountGuard guard;
  ad::set_num_threads(3);
  constexpr std::int64_t kOuter = 12, kInner = 50;
  std::vector<std::atomic<int>> counts(kOuter * kInner);
  std::atomic<int> other_thread{0};
  ad::detail::parallel_for(kOuter, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t o = begin; o < end; ++o) {
      const auto outer_thread = std::this_thread::get_id();
      ad::detail::parallel_for(kInner, [&](std::int64_t b, std::int64_t e) {
        if (std::this_thread::get_id() != outer_thread) other_thread.fetch_add(1);
        for (std::int64_t i = b; i < e; ++i) counts[static_cast<std::size_t>(o * kInner + i)]++;
      });
    }
  });
  BOOST_TEST(other_thread.load() == 0);
  for (const auto& c : counts) BOOST_TEST(c.load() == 1);
}

BOOST_AUTO_TEST_CASE(loops_from_several_threads_at_once_each_run_every_index_once) {
  const ThreadCountGuard guard;
  ad::set_num_threads(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (const int c : run_counts(97 + round)) wrong.fetch_add(c == 1 ? 0 : 1);
      }
    });
  }
  for (auto& c : callers) c.join();
  BOOST_TEST(wrong.load() == 0);
}

// Back-to-back loops whose block counts differ (sizes 2..40, 2 and 3 threads, alternating): a
// worker that saw an earlier loop's last claim must never run a block of it with a later loop's
// fields. Each loop's body checks that every range it gets lies inside its own [0, n) and counts
// its indices; a piece run with another loop's context would break one of the two.
BOOST_AUTO_TEST_CASE(back_to_back_loops_of_different_sizes_never_mix) {
  const ThreadCountGuard guard;
  int out_of_range = 0;
  int miscounted = 0;
  for (int round = 0; round < 20000; ++round) {
    ad::set_num_threads(2 + round % 2);
    const std::int64_t n = 2 + (round * 7) % 39;
    std::vector<std::atomic<int>> counts(static_cast<std::size_t>(n));
    std::atomic<int> bad{0};
    ad::detail::parallel_for(n, [&, n](std::int64_t begin, std::int64_t end) {
      if (begin < 0 || end > n || begin >= end) {
        bad.fetch_add(1);
        return;
      }
      for (std::int64_t i = begin; i < end; ++i) counts[static_cast<std::size_t>(i)].fetch_add(1);
    });
    out_of_range += bad.load();
    for (const auto& c : counts) miscounted += c.load() != 1 ? 1 : 0;
  }
  BOOST_TEST(out_of_range == 0);
  BOOST_TEST(miscounted == 0);
}

BOOST_AUTO_TEST_CASE(set_num_threads_sets_the_count_and_zero_restores_the_default) {
  const ThreadCountGuard guard;
  ad::set_num_threads(3);
  BOOST_TEST(ad::num_threads() == 3);
  BOOST_TEST(ad::detail::threads_for_loops() == 3);
  ad::set_num_threads(0);
  // The default, computed here independently: OMP_NUM_THREADS if set, else the affinity mask.
  int expected = 0;
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    expected = std::atoi(env);
  } else {
    cpu_set_t set;
    BOOST_TEST_REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    expected = CPU_COUNT(&set);
  }
  BOOST_TEST(ad::num_threads() == expected);
  BOOST_CHECK_EXCEPTION(ad::set_num_threads(-1), ad::InvalidArgumentError,
                        (MessageHas{{"set_num_threads", "-1"}}));
  BOOST_TEST(ad::num_threads() == expected);
}

BOOST_AUTO_TEST_CASE(an_override_applies_to_its_thread_and_scope_only) {
  const ThreadCountGuard guard;
  ad::set_num_threads(2);
  {
    const ad::detail::ThreadCountOverride one(1);
    BOOST_TEST(ad::detail::threads_for_loops() == 1);
    BOOST_TEST(threads_running_together(1).size() == 1U);
    int elsewhere = 0;
    std::thread([&] { elsewhere = ad::detail::threads_for_loops(); }).join();
    BOOST_TEST(elsewhere == 2);
    const ad::detail::ThreadCountOverride none(0);  // 0: keeps the enclosing count
    BOOST_TEST(ad::detail::threads_for_loops() == 1);
  }
  BOOST_TEST(ad::detail::threads_for_loops() == 2);
}

BOOST_AUTO_TEST_CASE(session_rejects_a_negative_intra_op_thread_count) {
  ad::Graph g;
  BOOST_CHECK_EXCEPTION(ad::Session(g, {.intra_op_parallelism_threads = -2}),
                        ad::InvalidArgumentError,
                        (MessageHas{{"intra_op_parallelism_threads", "-2"}}));
}

BOOST_AUTO_TEST_SUITE_END()
