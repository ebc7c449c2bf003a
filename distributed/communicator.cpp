// The MPI environment (Boost.MPI) and the polled point-to-point transfers behind every collective.
#include "distributed/communicator.h"

#include <algorithm>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/mpi/request.hpp>
#include <boost/mpi/status.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "autodiff/ops/global_moments_hook.h"
#include "distributed/collectives.h"
#include "distributed/moments.h"

namespace ad::distributed {
namespace {

namespace mpi = boost::mpi;
using detail::Bytes;
using Clock = std::chrono::steady_clock;

struct State {
  std::unique_ptr<mpi::environment> environment;  // finalizes MPI at exit, after `world`
  std::unique_ptr<mpi::communicator> world;
  bool initialized = false;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::uint64_t sequence = 0;  // collectives called so far: the message tag of the next one
  CommunicationStats stats;
  // Buffers of transfers abandoned by a timeout: MPI may still write into them, so they live on.
  std::vector<std::shared_ptr<Bytes>> abandoned;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  State(State&&) = delete;
  State& operator=(State&&) = delete;
  // After a timeout the job has lost a rank, and MPI_Finalize (run by the environment's
  // destructor) would wait for it forever: end the job with MPI_Abort instead.
  ~State() {
    if (!abandoned.empty() && environment) {
      std::fflush(nullptr);
      mpi::environment::abort(1);
    }
  }
};

State& state() {
  static State instance;
  return instance;
}

// Whether a launcher (Open MPI's mpirun, a PMI or PMIx process manager) started this process.
bool started_by_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

// Tags stay below 32767, the smallest MPI_TAG_UB the standard allows.
int tag_of(std::uint64_t sequence) { return static_cast<int>(sequence % 32000); }

// A message: the payload, then a trailer with the collective's node name, the name's length and
// the collective's sequence number. At the end, the trailer is appended to and stripped from the
// payload's own buffer in place, so a large payload is never copied to be sent or received.
constexpr std::size_t kTrailer = sizeof(std::uint32_t) + sizeof(std::uint64_t);

void frame(Bytes& payload, std::uint64_t sequence, std::string_view node) {
  const std::size_t at = payload.size();
  payload.resize(at + node.size() + kTrailer);
  char* p = payload.data() + at;
  const auto name_size = static_cast<std::uint32_t>(node.size());
  if (!node.empty()) std::memcpy(p, node.data(), node.size());
  std::memcpy(p + node.size(), &name_size, sizeof name_size);
  std::memcpy(p + node.size() + sizeof name_size, &sequence, sizeof sequence);
}

// Strips the trailer of a message from `peer` after checking it belongs to the same collective.
void unframe(Bytes& framed, std::string_view op, std::string_view node, int peer) {
  std::uint32_t name_size = 0;
  const std::size_t size = framed.size();
  if (size >= kTrailer) {
    std::memcpy(&name_size, framed.data() + size - kTrailer, sizeof name_size);
  }
  if (size < kTrailer + name_size) {
    throw InternalError(str(op, " '", node, "': a truncated message came from rank ", peer));
  }
  const std::size_t payload_size = size - kTrailer - name_size;
  const std::string_view their_node(framed.data() + payload_size, name_size);
  if (their_node != node) {
    throw InvalidArgumentError(str(op, " '", node, "': rank ", peer, " is in collective '",
                                   their_node, "' (the ranks took different paths)"));
  }
  framed.resize(payload_size);
}

struct Receive {
  int peer = 0;
  std::shared_ptr<Bytes> buffer = std::make_shared<Bytes>();
  mpi::request request;
  bool posted = false;
  bool done = false;
};

struct Send {
  int peer = 0;
  std::shared_ptr<Bytes> buffer;  // the framed message (shared when peers get the same one)
  mpi::request request;
  bool done = false;
};

std::string rank_list(const std::vector<int>& ranks) {
  std::ostringstream out;
  out << (ranks.size() == 1 ? "rank " : "ranks ");
  for (std::size_t i = 0; i < ranks.size(); ++i) out << (i == 0 ? "" : ", ") << ranks[i];
  return out.str();
}

// One polling pass over the pending transfers; true when all are done.
bool poll(const mpi::communicator& world, int tag, std::vector<Send>& sends,
          std::vector<Receive>& receives) {
  bool all_done = true;
  for (Send& send : sends) {
    if (!send.done && send.request.test()) send.done = true;
    all_done = all_done && send.done;
  }
  for (Receive& receive : receives) {
    if (!receive.posted) {
      if (const auto status = world.iprobe(receive.peer, tag)) {
        // MPI_Get_count on the raw status: Boost's status::count<char>() returns an optional
        // that GCC 12 reports as maybe-uninitialized when inlined at -O1 with the sanitizers.
        int bytes = 0;
        MPI_Get_count(&static_cast<const MPI_Status&>(*status), MPI_CHAR, &bytes);
        receive.buffer->resize(static_cast<std::size_t>(std::max(bytes, 0)));
        receive.request = world.irecv(receive.peer, tag, receive.buffer->data(),
                                      static_cast<int>(receive.buffer->size()));
        receive.posted = true;
      }
    }
    if (receive.posted && !receive.done && receive.request.test()) receive.done = true;
    all_done = all_done && receive.done;
  }
  return all_done;
}

[[noreturn]] void time_out(std::string_view op, std::string_view node, std::vector<Send>& sends,
                           std::vector<Receive>& receives) {
  State& s = state();
  std::vector<int> missing;
  for (Receive& receive : receives) {
    if (receive.posted && !receive.done) receive.request.cancel();
    if (!receive.done) missing.push_back(receive.peer);
    s.abandoned.push_back(receive.buffer);
  }
  for (const Send& send : sends) {
    if (!send.done) missing.push_back(send.peer);
    s.abandoned.push_back(send.buffer);
  }
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  const double seconds = static_cast<double>(s.timeout.count()) / 1000.0;
  throw DeadlineExceededError(str(op, " '", node, "': rank ", s.rank, " timed out after ", seconds,
                                  " s waiting for ", rank_list(missing),
                                  " (failed, exited or waiting in another collective)"));
}

// Sends payloads[i] to send_to[i] (payloads holds one entry, sent to every peer, or one per
// peer) and receives one message from each of `receive_from`; returns the received payloads in the
// order of `receive_from`. The payloads are framed in place and given back unframed (a timeout
// keeps them alive in `abandoned` instead, since MPI may still read them).
std::vector<Bytes> transfer(std::string_view op, std::string_view node, std::span<Bytes> payloads,
                            const std::vector<int>& send_to, const std::vector<int>& receive_from) {
  State& s = state();
  const auto start = Clock::now();
  const std::uint64_t sequence = s.sequence++;
  const int tag = tag_of(sequence);
  std::vector<std::size_t> sizes;
  std::vector<std::shared_ptr<Bytes>> framed;
  for (Bytes& payload : payloads) {
    sizes.push_back(payload.size());
    frame(payload, sequence, node);
    framed.push_back(std::make_shared<Bytes>(std::move(payload)));
  }
  std::vector<Send> sends;
  for (std::size_t i = 0; i < send_to.size(); ++i) {
    auto buffer = framed[framed.size() == 1 ? 0 : i];
    auto request =
        s.world->isend(send_to[i], tag, buffer->data(), static_cast<int>(buffer->size()));
    sends.push_back({send_to[i], std::move(buffer), request});
  }
  std::vector<Receive> receives;
  for (const int peer : receive_from) {
    receives.emplace_back();
    receives.back().peer = peer;
  }
  const auto deadline = start + s.timeout;
  for (std::int64_t spins = 0; !poll(*s.world, tag, sends, receives); ++spins) {
    // MPI moves a large message in fragments only while both sides poll. Between polls the core
    // goes to any other runnable thread (ranks may outnumber cores, and on a loaded machine a
    // rank spinning through its time slice delays the very peer it waits for); past 200 ms the
    // peer is slow or lost: poll every 100 us.
    std::this_thread::yield();
    if ((spins & 63) != 0) continue;
    const auto now = Clock::now();
    if (now > deadline) time_out(op, node, sends, receives);
    if (now > start + std::chrono::milliseconds(200)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  s.stats.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  for (const Send& send : sends)
    s.stats.bytes_sent += static_cast<std::int64_t>(send.buffer->size());
  ++s.stats.collectives;
  sends.clear();
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    payloads[i] = std::move(*framed[i]);
    payloads[i].resize(sizes[i]);
  }
  std::vector<Bytes> received;
  received.reserve(receives.size());
  for (Receive& receive : receives) {
    unframe(*receive.buffer, op, node, receive.peer);
    received.push_back(std::move(*receive.buffer));
  }
  return received;
}

std::vector<int> peers_of(int me) {
  std::vector<int> peers;
  for (int peer = 0; peer < size(); ++peer) {
    if (peer != me) peers.push_back(peer);
  }
  return peers;
}

// Puts `own` at index rank() among the payloads received from the other ranks in rank order.
std::vector<Bytes> by_rank(std::vector<Bytes>&& received, Bytes&& own) {
  std::vector<Bytes> all;
  all.reserve(received.size() + 1);
  auto next = received.begin();
  for (int peer = 0; peer < size(); ++peer) {
    all.push_back(peer == rank() ? std::move(own) : std::move(*next++));
  }
  return all;
}

}  // namespace

void init(InitOptions options) {
  State& s = state();
  s.timeout = options.timeout;
  if (s.initialized) return;
  s.initialized = true;
  // Synchronized batch normalization (in gradtape::layers, which cannot link this library) takes
  // its statistics over the global batch, and sums its gradient's per-channel sums, through these
  // hooks.
  nn::set_global_moments_hook([](const Tensor& x, const std::vector<int>& reduction_axes) {
    return global_moments_and_count(x, reduction_axes, /*keepdims=*/true);
  });
  nn::set_global_sum_hook(
      [](const Tensor& x) { return allreduce(x, ReduceOp::kSum, "batch_norm_grad_sums"); });
  if (!started_by_launcher()) return;
  s.environment = std::make_unique<mpi::environment>(mpi::threading::serialized);
  s.world = std::make_unique<mpi::communicator>();
  s.rank = s.world->rank();
  s.size = s.world->size();
}

bool initialized() { return state().initialized; }
int rank() { return state().rank; }
int size() { return state().size; }
std::chrono::milliseconds timeout() { return state().timeout; }
void set_timeout(std::chrono::milliseconds timeout) { state().timeout = timeout; }

CommunicationStats communication_stats() { return state().stats; }

void barrier(std::string_view what) { (void)detail::exchange(what, what, Bytes{}); }

namespace detail {

std::vector<Bytes> exchange(std::string_view op, std::string_view node, Bytes&& payload) {
  if (size() == 1) return {std::move(payload)};
  const auto peers = peers_of(rank());
  auto received = transfer(op, node, std::span(&payload, 1), peers, peers);
  return by_rank(std::move(received), std::move(payload));
}

std::vector<Bytes> exchange_each(std::string_view op, std::string_view node,
                                 std::vector<Bytes>&& payloads) {
  if (payloads.size() != static_cast<std::size_t>(size())) {
    throw InternalError(
        str(op, " '", node, "': ", payloads.size(), " payloads for ", size(), " ranks"));
  }
  Bytes own = std::move(payloads[static_cast<std::size_t>(rank())]);
  if (size() == 1) return {std::move(own)};
  payloads.erase(payloads.begin() + rank());
  const auto peers = peers_of(rank());
  auto received = transfer(op, node, payloads, peers, peers);
  return by_rank(std::move(received), std::move(own));
}

std::vector<Bytes> exchange(std::string_view op, std::string_view node,
                            std::span<const char> payload) {
  return exchange(op, node, Bytes(payload.begin(), payload.end()));
}

Bytes broadcast(std::string_view op, std::string_view node, std::span<const char> payload,
                int root) {
  const int n = size();
  if (root < 0 || root >= n) {
    throw ValueError(str(op, " '", node, "': root ", root, " is not a rank of ", n));
  }
  Bytes own(payload.begin(), payload.end());
  if (n == 1) return own;
  if (rank() == root) {
    (void)transfer(op, node, std::span(&own, 1), peers_of(root), {});
    return own;
  }
  return std::move(transfer(op, node, {}, {}, {root}).front());
}

}  // namespace detail
}  // namespace ad::distributed
