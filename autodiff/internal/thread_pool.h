// Internal: the library's thread pool, which runs the pieces of one parallel loop on the calling
// thread and the pool's workers. Pieces are claimed one block of indices at a time, so a worker
// that the OS has descheduled only delays the blocks it already holds; idle workers spin briefly
// and then sleep on a condition variable.
#pragma once

#include <cstdint>
#include <type_traits>

namespace ad::detail {

// A piece of a loop: runs the indices [begin, end) of it; `context` is the loop's body.
using PieceFunction = void (*)(void* context, std::int64_t begin, std::int64_t end);

// Calls piece(context, begin, end) over disjoint ranges covering [0, n), on up to
// threads_for_loops() threads, and returns when all have finished. The ranges depend on the
// thread count, so each index must compute the same thing wherever it runs. Runs everything on
// the calling thread when one thread is wanted, when called from inside a piece (nested loops),
// or while another thread's loop holds the pool. The first exception a piece throws is rethrown
// here, after every piece has finished (pieces not yet started are skipped).
void run_pieces(std::int64_t n, PieceFunction piece, void* context);

// Runs body(begin, end) over disjoint ranges covering [0, n), as run_pieces.
template <class Body>
void parallel_for(std::int64_t n, Body&& body) {
  using Stored = std::remove_reference_t<Body>;
  run_pieces(
      n,
      [](void* context, std::int64_t begin, std::int64_t end) {
        (*static_cast<Stored*>(context))(begin, end);
      },
      const_cast<void*>(
          static_cast<const void*>(&body)));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

// The threads a parallel loop started on this thread may use: the innermost
// ThreadCountOverride's count, else ad::num_threads().
[[nodiscard]] int threads_for_loops();

// Within its scope, parallel loops started on this thread use `threads` threads (0: no change).
// Session::run uses it for SessionOptions::intra_op_parallelism_threads.
class ThreadCountOverride {
 public:
  explicit ThreadCountOverride(int threads);
  ~ThreadCountOverride();
  ThreadCountOverride(const ThreadCountOverride&) = delete;
  ThreadCountOverride& operator=(const ThreadCountOverride&) = delete;

 private:
  int saved_;
};

}  // namespace ad::detail
