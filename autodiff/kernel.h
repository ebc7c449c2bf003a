// What an op's kernel sees while a Session runs it: its inputs, its outputs (allocated from the
// session's buffer pool), its attributes and the session's variables. For op implementers.
#pragma once

#include <any>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/error.h"
#include "gradtape/autodiff/graph.h"

namespace ad {

// Reusable storage blocks, bucketed by size. A block returns here when the last Array using it is
// released by the session, so a steady-state run allocates nothing. One pool serves one run at a
// time.
class BufferPool {
 public:
  [[nodiscard]] std::shared_ptr<detail::Storage> acquire(std::size_t bytes);
  // Takes the storage back when no other Array shares it; leaves `array` empty.
  void recycle(Array& array);
  [[nodiscard]] std::uint64_t allocations() const { return allocations_; }
  [[nodiscard]] std::uint64_t reuses() const { return reuses_; }
  [[nodiscard]] std::size_t bytes_allocated() const { return bytes_allocated_; }
  void set_limit(std::size_t bytes) { limit_ = bytes; }

 private:
  struct Bucket {
    std::size_t bytes;
    std::vector<std::shared_ptr<detail::Storage>> free;
  };
  // The free blocks of exactly `bytes`, an empty list added when there is none.
  std::vector<std::shared_ptr<detail::Storage>>& free_blocks(std::size_t bytes);
  // Sorted by size. A run uses few distinct sizes, and a binary search over them costs less than
  // hashing (a division per probe): the pool is looked up twice for every output of every node.
  std::vector<Bucket> buckets_;
  std::uint64_t allocations_ = 0;
  std::uint64_t reuses_ = 0;
  std::size_t bytes_allocated_ = 0;
  std::size_t limit_ = 0;  // 0: no limit
};

// The values of a session's variables, indexed by variable id. Thread-safe.
class VariableStore {
 public:
  // The current value (sharing storage). Throws FailedPreconditionError naming the variable when
  // it was never initialized.
  [[nodiscard]] Array read(const Graph& graph, int id) const;
  [[nodiscard]] bool initialized(int id) const;
  // Replaces the value.
  void write(int id, Array value);
  // How many times `node` asked before (0, 1, 2, ...): random ops draw a new stream per run.
  [[nodiscard]] std::uint64_t next_counter(const Node* node);
  // Calls f(value) with exclusive storage (copied first if a read still shares it).
  template <class F>
  void update(const Graph& graph, int id, F&& f) {
    const std::lock_guard lock(mutex_);
    Array& value = slot(graph, id);
    (void)value.raw_mutable_data();  // makes the storage exclusive
    f(value);
  }
  // Calls f(values), an std::array<Array*, N>, with exclusive storage for several variables under
  // one lock: fused optimizer updates change a variable and its slots together.
  template <std::size_t N, class F>
  void update(const Graph& graph, const std::array<int, N>& ids, F&& f) {
    const std::lock_guard lock(mutex_);
    std::array<Array*, N> values{};
    for (std::size_t k = 0; k < N; ++k) {
      values[k] = &slot(graph, ids[k]);
      (void)values[k]->raw_mutable_data();
    }
    f(values);
  }

 private:
  Array& slot(const Graph& graph, int id);
  mutable std::mutex mutex_;
  std::vector<Array> values_;
  std::vector<char> initialized_;
  std::unordered_map<const Node*, std::uint64_t> counters_;
};

class KernelContext {
 public:
  // `slots` and `produced` are the run's values and their "computed" flags, indexed by slot.
  KernelContext(const Graph& graph, const Node& node, Array* slots, char* produced,
                const int* input_slots, int output_base, BufferPool& pool, VariableStore& variables)
      : graph_(graph),
        node_(node),
        slots_(slots),
        produced_(produced),
        input_slots_(input_slots),
        output_base_(output_base),
        pool_(pool),
        variables_(variables) {}

  [[nodiscard]] const Node& node() const { return node_; }
  [[nodiscard]] const Graph& graph() const { return graph_; }
  [[nodiscard]] int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  [[nodiscard]] const Array& input(int i) const { return slots_[input_slots_[i]]; }
  // False only for inputs from a cond branch that was not taken (see Merge).
  [[nodiscard]] bool has_input(int i) const { return produced_[input_slots_[i]] != 0; }

  // Allocates output i with the node's output dtype; the contents are unspecified.
  Array& allocate_output(int i, const Shape& shape);
  // Makes output i share `value` (no copy): reshape, identity and variable reads use this.
  void set_output(int i, Array value);

  template <class A>
  [[nodiscard]] const A& attrs() const {
    return *std::any_cast<A>(&node_.attrs);
  }
  [[nodiscard]] VariableStore& variables() const { return variables_; }

  // Throws InvalidArgumentError "<Op> '<node>': <what>".
  [[noreturn]] void fail(std::string_view what) const;

 private:
  const Graph& graph_;
  const Node& node_;
  Array* slots_;
  char* produced_;
  const int* input_slots_;
  int output_base_;
  BufferPool& pool_;
  VariableStore& variables_;
};

// Calls f(T{}) with T the C++ type of a floating dtype; throws InternalError otherwise.
template <class F>
decltype(auto) dispatch_floating(DType dtype, F&& f) {
  if (dtype == DType::Float64) return f(double{});
  if (dtype != DType::Float32)
    throw InternalError(str("kernel: dtype ", dtype, " is not floating"));
  return f(float{});
}

// Calls f(T{}) for any dtype.
template <class F>
decltype(auto) dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float64:
      return f(double{});
    case DType::Int64:
      return f(std::int64_t{});
    case DType::Bool:
      return f(bool{});
    case DType::Float32:
      break;
  }
  return f(float{});
}

}  // namespace ad
