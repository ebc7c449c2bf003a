// The process group of data-parallel training: init() from the MPI environment, rank() and size(),
// the timeout every collective waits at most, and the byte transfers the collective ops are built
// on (non-blocking MPI point-to-point calls polled against a deadline, so a rank whose peer died
// or took another path fails with an error instead of hanging).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "gradtape/autodiff/error.h"

namespace ad::distributed {

// A collective did not complete before the timeout: a peer failed, exited or is waiting in a
// different collective. The message names the op, its node and the ranks that did not answer.
// The job has then lost a rank: at exit the process ends with MPI_Abort (status 1) instead of
// waiting for the lost rank in MPI_Finalize.
class DeadlineExceededError : public Error {
 public:
  using Error::Error;
};

struct InitOptions {
  // How long one collective waits for its peers before throwing DeadlineExceededError.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

// Joins the MPI job this process was started in (mpirun, srun, ...). A program started without a
// launcher is a job of one rank and never calls MPI. Calling init() again only updates the options.
// It also registers global_moments and a sum all-reduce as the collectives of synchronized batch
// normalization (BatchNormalizationOptions::synchronized).
// Collectives may run on any thread (MPI_THREAD_SERIALIZED), one at a time, and every rank must
// run them in the same order: a Session runs its nodes in tape order, so one session per rank
// running the same graph does.
void init(InitOptions options = {});
// Whether init() was called.
[[nodiscard]] bool initialized();
// This process's rank in [0, size()); 0 before init().
[[nodiscard]] int rank();
// The number of ranks; 1 before init().
[[nodiscard]] int size();
// The collective timeout (see InitOptions).
[[nodiscard]] std::chrono::milliseconds timeout();
void set_timeout(std::chrono::milliseconds timeout);

// What this rank's collectives cost since init(): wall time spent inside them (moving bytes and
// waiting for slower ranks alike), bytes sent and the number of collectives.
struct CommunicationStats {
  double seconds = 0;
  std::int64_t bytes_sent = 0;
  std::int64_t collectives = 0;
};
[[nodiscard]] CommunicationStats communication_stats();

// Blocks until every rank arrived; DeadlineExceededError naming `what` after the timeout.
void barrier(std::string_view what = "barrier");

namespace detail {

using Bytes = std::vector<char>;

// Every rank sends `payload` to every other rank; returns all payloads indexed by rank (this
// rank's own included, moved from `payload` without a copy). `op` and `node` name the collective
// in errors; every rank must call the collectives in the same order, and a rank in a different
// collective is reported as diverged.
[[nodiscard]] std::vector<Bytes> exchange(std::string_view op, std::string_view node,
                                          Bytes&& payload);
// Sends payloads[r] to each rank r (payloads holds size() entries; this rank's own is not sent) and
// returns what every rank sent to this one, indexed by rank (this rank's own entry included).
[[nodiscard]] std::vector<Bytes> exchange_each(std::string_view op, std::string_view node,
                                               std::vector<Bytes>&& payloads);
// The same as exchange for a payload the caller keeps (copied once).
[[nodiscard]] std::vector<Bytes> exchange(std::string_view op, std::string_view node,
                                          std::span<const char> payload);
// The root's payload on every rank (`payload` is read on the root only).
[[nodiscard]] Bytes broadcast(std::string_view op, std::string_view node,
                              std::span<const char> payload, int root);
}  // namespace detail
}  // namespace ad::distributed
