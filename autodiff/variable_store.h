// VariableStore: the values of one Session's variables, indexed by variable id, and the per-node
// counters random ops draw their streams from. Kernels reach it through KernelContext::variables.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/graph.h"

namespace ad {

// The values of a session's variables, indexed by variable id. Thread-safe.
class VariableStore {
 public:
  // SessionOptions::check_numerics: from now on every write and update must leave finite values;
  // an update is applied to a copy, checked, and only then replaces the value, so a failing one
  // (InvalidArgumentError naming the variable) leaves the variable unchanged.
  void check_writes(const Graph& graph) { checked_graph_ = &graph; }
  // The current value (sharing storage). Throws FailedPreconditionError naming the variable when
  // it was never initialized.
  [[nodiscard]] Array read(const Graph& graph, int id) const;
  [[nodiscard]] bool initialized(int id) const;
  // Replaces the value (checked for NaN and Inf after check_writes).
  void write(int id, Array value);
  // How many times `node` asked before (0, 1, 2, ...): random ops draw a new stream per run.
  [[nodiscard]] std::uint64_t next_counter(const Node* node);
  // Calls f(value) with exclusive storage (copied first if a read still shares it).
  template <class F>
  void update(const Graph& graph, int id, F&& f) {
    const std::lock_guard lock(mutex_);
    Array& value = slot(graph, id);
    if (checked_graph_ != nullptr) {
      Array copy = value.clone();
      f(copy);
      check_finite(id, copy);
      value = std::move(copy);
      return;
    }
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
    if (checked_graph_ == nullptr) {
      f(values);
      return;
    }
    std::array<Array, N> copies{};
    std::array<Array*, N> targets{};
    for (std::size_t k = 0; k < N; ++k) {
      copies[k] = values[k]->clone();
      targets[k] = &copies[k];
    }
    f(targets);
    for (std::size_t k = 0; k < N; ++k) check_finite(ids[k], copies[k]);
    for (std::size_t k = 0; k < N; ++k) *values[k] = std::move(copies[k]);
  }

 private:
  Array& slot(const Graph& graph, int id);
  // InvalidArgumentError naming the variable when a floating `value` holds NaN or Inf.
  void check_finite(int id, const Array& value) const;
  const Graph* checked_graph_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<Array> values_;
  std::vector<char> initialized_;
  std::unordered_map<const Node*, std::uint64_t> counters_;
};

}  // namespace ad
