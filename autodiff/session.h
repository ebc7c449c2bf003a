// ad::Session: runs fetches with feeds. It prunes the tape to what the fetches need, caches a plan
// per (fetches, feeds, feed shapes), reuses buffers across runs, and owns the variables' values.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

class Graph;
class Variable;

// Placeholder (or any single-output tensor) -> the value to use for it in one run.
using FeedDict = std::vector<std::pair<Tensor, Array>>;

struct SessionOptions {
  // Per session, the most bytes of buffers alive at once (pooled, in runs, fetched results still
  // held; freed ones count no more): more is a ResourceExhaustedError. 0: no cap.
  std::size_t memory_limit_bytes = 0;
  // Check every floating output for NaN/Inf and fail naming the first node that produced one.
  bool check_numerics = false;
  // Threads (the calling one included) each kernel of this session's runs may use, as TF's
  // ConfigProto.intra_op_parallelism_threads; 0: the process-wide ad::num_threads(). Results are
  // bitwise the same for every count. Negative counts are an InvalidArgumentError.
  int intra_op_parallelism_threads = 0;
};

struct SessionStats {
  std::uint64_t runs = 0;
  std::uint64_t plans = 0;               // distinct signatures planned
  std::uint64_t buffer_allocations = 0;  // pool misses: new storage blocks
  std::uint64_t buffer_reuses = 0;       // pool hits
  std::size_t buffer_bytes = 0;          // bytes the pools allocated in all
};

class Session {
 public:
  explicit Session(Graph& graph, SessionOptions options = {});
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&&) = delete;
  Session& operator=(Session&&) = delete;
  ~Session();

  // Runs what the fetches need and returns one Array per fetch (an empty Array for an op without
  // outputs). Fetched arrays are handed over without a copy. Safe to call from several threads.
  std::vector<Array> run(const std::vector<Tensor>& fetches, const FeedDict& feeds = {});
  // Runs one fetch and returns its value: eval(loss, feeds) == run({loss}, feeds)[0].
  Array eval(const Tensor& fetch, const FeedDict& feeds = {});

  // Variables' values in this session.
  [[nodiscard]] bool is_initialized(const Variable& variable) const;
  [[nodiscard]] Array value(const Variable& variable) const;
  // Sets a variable's value; ValueError when the dtype or shape differs from the variable's.
  void set_value(const Variable& variable, const Array& value);

  // How many times the node behind `op` has run in this session (to find update ops never run).
  [[nodiscard]] std::uint64_t run_count(const Tensor& op) const;

  [[nodiscard]] Graph& graph() const;
  [[nodiscard]] SessionStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ad
