// The thread counts of threading.h and the library's thread pool (internal/thread_pool.h).
//
// One loop runs at a time. Its caller publishes the loop in `claim_`, a 64-bit word holding the
// loop's number (high half) and the next unclaimed block (low half); every participant, caller
// included, claims blocks with a compare-and-swap on that word, so a worker that wakes up late,
// or belongs to an earlier loop, can never claim a block of a loop it did not see published. The
// caller returns once `done_` counts every block, which also orders the pieces' writes before
// whatever the caller does next.
#include "autodiff/threading.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/internal/thread_pool.h"

namespace ad {
namespace detail {
namespace {

// How long an idle worker (or a caller waiting for a late piece) polls before it sleeps: a few
// microseconds, enough for back-to-back loops. Polling burns the time slice a shared machine's
// scheduler then takes back from the process: with 30 us, the training step of
// bench/threads_user.cpp with one competing process per core measured about 6% slower than with
// 5 us, and no faster without them (medians of 4 runs on a 2-core machine that other jobs kept
// at a load average near 10, so within its noise).
constexpr auto kSpinTime = std::chrono::microseconds(5);
// Blocks per participating thread: small blocks let the others take over the work of a thread
// the OS has descheduled; few enough that claiming costs nothing next to a block.
constexpr std::int64_t kBlocksPerThread = 4;
// The block index of a closed loop's claim word: at least any loop's block count.
constexpr std::uint64_t kClosed = 0xffffffffU;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int default_threads() {
  if (const char* text = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end != text && value > 0) return static_cast<int>(std::min(value, 1024L));
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
}

std::atomic<int> process_threads{0};  // 0: not chosen yet (default_threads())
thread_local int override_threads = 0;
thread_local bool inside_piece = false;

// Marks the current thread as running pieces: loops started there run inline.
class InsidePiece {
 public:
  InsidePiece() : saved_(inside_piece) { inside_piece = true; }
  ~InsidePiece() { inside_piece = saved_; }
  InsidePiece(const InsidePiece&) = delete;
  InsidePiece& operator=(const InsidePiece&) = delete;

 private:
  bool saved_;
};

class ThreadPool {
 public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  // Runs the loop on `threads` threads; false (and nothing run) when another loop holds the pool.
  bool run(std::int64_t n, PieceFunction piece, void* context, int threads);

 private:
  static std::uint32_t loop_of(std::uint64_t claim) {
    return static_cast<std::uint32_t>(claim >> 32);
  }
  void start_workers(int count);
  void worker(int index);
  std::uint64_t wait_for_loop(std::uint32_t seen);
  void wait_until_done(std::int64_t blocks);
  void work_on(std::uint32_t loop);
  void run_block(std::int64_t block);

  std::atomic<bool> busy_{false};
  std::atomic<std::uint64_t> claim_{0};
  std::uint32_t loops_ = 0;  // written by the caller holding busy_ only
  // The published loop; stable from the store to claim_ until done_ reaches blocks_.
  std::atomic<PieceFunction> piece_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<std::int64_t> n_{0}, block_size_{1}, blocks_{0};
  std::atomic<int> helpers_{0};
  std::atomic<std::int64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;

  std::mutex sleep_mutex_;
  std::condition_variable work_ready_, loop_done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;  // grown by the caller holding busy_
};

ThreadPool::~ThreadPool() {
  {
    const std::lock_guard lock(sleep_mutex_);
    stop_.store(true);
  }
  work_ready_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::start_workers(int count) {
  while (static_cast<int>(workers_.size()) < count) {
    const int index = static_cast<int>(workers_.size());
    try {
      workers_.emplace_back([this, index] { worker(index); });
    } catch (const std::system_error&) {
      return;  // no more threads to be had: run with the workers there are
    }
  }
}

bool ThreadPool::run(std::int64_t n, PieceFunction piece, void* context, int threads) {
  if (busy_.exchange(true, std::memory_order_acquire)) return false;
  start_workers(threads - 1);
  const int helpers = std::min(threads - 1, static_cast<int>(workers_.size()));
  const std::int64_t wanted_blocks = std::min<std::int64_t>(n, (helpers + 1) * kBlocksPerThread);
  const std::int64_t block_size = (n + wanted_blocks - 1) / wanted_blocks;
  const std::int64_t blocks = (n + block_size - 1) / block_size;
  piece_.store(piece, std::memory_order_relaxed);
  context_.store(context, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  block_size_.store(block_size, std::memory_order_relaxed);
  blocks_.store(blocks, std::memory_order_release);  // pairs with work_on's acquire load
  helpers_.store(helpers, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  error_ = nullptr;
  const std::uint32_t loop = ++loops_;
  claim_.store(std::uint64_t{loop} << 32);  // seq_cst: ordered before the sleepers check
  if (helpers > 0 && sleeping_workers_.load() > 0) {
    { const std::lock_guard lock(sleep_mutex_); }
    work_ready_.notify_all();
  }
  {
    const InsidePiece inside;
    work_on(loop);
  }
  wait_until_done(blocks);
  // Close the loop before another can be published: a worker that read this loop's last claim
  // word (loop, blocks) and then a later loop's larger blocks_ would otherwise claim block
  // `blocks` of this loop and run it with the later loop's fields (or count it in the later
  // loop's done_). After this store its compare-and-swap fails, and a reload reads an index no
  // loop reaches (run_pieces keeps n, so blocks, below 2^32 - 1).
  claim_.store((std::uint64_t{loop} << 32) | kClosed);
  std::exception_ptr error = std::move(error_);
  busy_.store(false, std::memory_order_release);
  if (error) std::rethrow_exception(error);
  return true;
}

// Claims and runs blocks of loop `loop` until none is left (or another loop is published).
void ThreadPool::work_on(std::uint32_t loop) {
  std::uint64_t claim = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (loop_of(claim) != loop) return;
    const auto block = static_cast<std::int64_t>(claim & 0xffffffffU);
    // blocks_ may already belong to a later loop here; the loop that wrote it was published
    // after this one was closed (run), and this acquire load orders that close before the
    // exchange below, which then fails.
    if (block >= blocks_.load(std::memory_order_acquire)) return;
    if (claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      run_block(block);
      claim = claim_.load(std::memory_order_acquire);
    }
  }
}

// Runs one claimed block: the loop's fields stay put until its last block is counted done.
void ThreadPool::run_block(std::int64_t block) {
  const std::int64_t size = block_size_.load(std::memory_order_relaxed);
  const std::int64_t begin = block * size;
  const std::int64_t end = std::min(n_.load(std::memory_order_relaxed), begin + size);
  const std::int64_t blocks = blocks_.load(std::memory_order_relaxed);
  if (!failed_.load(std::memory_order_relaxed)) {
    try {
      piece_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), begin, end);
    } catch (...) {
      const std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  if (done_.fetch_add(1) + 1 == blocks && caller_sleeping_.load()) {
    { const std::lock_guard lock(sleep_mutex_); }
    loop_done_.notify_one();
  }
}

void ThreadPool::wait_until_done(std::int64_t blocks) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (int i = 0; done_.load(std::memory_order_acquire) != blocks; ++i) {
    cpu_relax();
    if (i % 64 != 63 || std::chrono::steady_clock::now() < deadline) continue;
    std::unique_lock lock(sleep_mutex_);
    caller_sleeping_.store(true);
    loop_done_.wait(lock, [&] { return done_.load() == blocks; });
    caller_sleeping_.store(false);
    return;
  }
}

// Returns the claim word of the first loop after `seen` (or anything once the pool stops).
std::uint64_t ThreadPool::wait_for_loop(std::uint32_t seen) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (int i = 0;; ++i) {
    const std::uint64_t claim = claim_.load(std::memory_order_acquire);
    if (loop_of(claim) != seen || stop_.load(std::memory_order_relaxed)) return claim;
    cpu_relax();
    if (i % 64 == 63 && std::chrono::steady_clock::now() >= deadline) break;
  }
  std::unique_lock lock(sleep_mutex_);
  sleeping_workers_.fetch_add(1);
  std::uint64_t claim = 0;
  work_ready_.wait(lock, [&] {
    claim = claim_.load();
    return loop_of(claim) != seen || stop_.load();
  });
  sleeping_workers_.fetch_sub(1);
  return claim;
}

void ThreadPool::worker(int index) {
  const InsidePiece inside;  // loops started by a piece run inline
  std::uint32_t seen = 0;
  for (;;) {
    const std::uint64_t claim = wait_for_loop(seen);
    if (stop_.load()) return;
    seen = loop_of(claim);
    // helpers_ may belong to a later loop; the claims in work_on are checked against `seen`.
    if (index < helpers_.load(std::memory_order_relaxed)) work_on(seen);
  }
}

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

void run_pieces(std::int64_t n, PieceFunction piece, void* context) {
  if (n <= 0) return;
  const int threads = inside_piece ? 1 : threads_for_loops();
  if (threads <= 1 || n == 1 || n > 0xffffffffLL || !pool().run(n, piece, context, threads)) {
    piece(context, 0, n);
  }
}

int threads_for_loops() { return override_threads > 0 ? override_threads : num_threads(); }

ThreadCountOverride::ThreadCountOverride(int threads) : saved_(override_threads) {
  if (threads > 0) override_threads = threads;
}
ThreadCountOverride::~ThreadCountOverride() { override_threads = saved_; }

}  // namespace detail

void set_num_threads(int threads) {
  if (threads < 0) {
    throw InvalidArgumentError(
        str("set_num_threads: the thread count must be positive, or 0 for "
            "the default; got ",
            threads));
  }
  detail::process_threads.store(threads == 0 ? detail::default_threads() : threads);
}

int num_threads() {
  int threads = detail::process_threads.load(std::memory_order_relaxed);
  if (threads == 0) {
    threads = detail::default_threads();
    int expected = 0;
    if (!detail::process_threads.compare_exchange_strong(expected, threads)) threads = expected;
  }
  return threads;
}

}  // namespace ad
