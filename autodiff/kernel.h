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
#include <utility>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/buffer_pool.h"
#include "gradtape/autodiff/error.h"
#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/variable_store.h"

namespace ad {

namespace detail {
struct RunEnv;
}  // namespace detail

// A kernel's temporary buffer (KernelContext::scratch): a block of the session's pool, counted
// against its memory cap while it exists and while it waits in the pool for the next run.
class Scratch {
 public:
  Scratch(BufferPool& pool, std::shared_ptr<detail::Storage> block)
      : pool_(&pool), block_(std::move(block)) {}
  Scratch(Scratch&& other) noexcept = default;
  Scratch& operator=(Scratch&&) = delete;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (block_) pool_->give_back(std::move(block_));
  }
  // The buffer as T elements (64-byte aligned); null when zero bytes were asked for.
  template <class T>
  [[nodiscard]] T* data() const {
    return block_ ? reinterpret_cast<T*>(block_->data) : nullptr;  // NOLINT
  }

 private:
  BufferPool* pool_;
  std::shared_ptr<detail::Storage> block_;
};

class KernelContext {
 public:
  // `slots` and `produced` are the run's values and their "computed" flags, indexed by slot.
  KernelContext(const Graph& graph, const Node& node, Array* slots, char* produced,
                const int* input_slots, int output_base, BufferPool& pool, VariableStore& variables,
                const detail::RunEnv* env = nullptr)
      : graph_(graph),
        node_(node),
        slots_(slots),
        produced_(produced),
        input_slots_(input_slots),
        output_base_(output_base),
        pool_(pool),
        variables_(variables),
        env_(env) {}

  [[nodiscard]] const Node& node() const { return node_; }
  [[nodiscard]] const Graph& graph() const { return graph_; }
  [[nodiscard]] int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  [[nodiscard]] const Array& input(int i) const { return slots_[input_slots_[i]]; }
  // False only for inputs from a cond branch that was not taken (see Merge).
  [[nodiscard]] bool has_input(int i) const { return produced_[input_slots_[i]] != 0; }

  // Allocates output i with the node's output dtype; the contents are unspecified.
  Array& allocate_output(int i, const Shape& shape);
  // A temporary buffer of `count` elements of T for this kernel, from the session's pool: counted
  // against the session's memory cap, ResourceExhaustedError naming the node and `what` when it
  // does not fit (or when memory runs out). Allocate it on the kernel's thread, before any
  // parallel region.
  template <class T>
  [[nodiscard]] Scratch scratch(std::int64_t count, std::string_view what) {
    return scratch_buffer(count, sizeof(T), what);
  }
  [[nodiscard]] Scratch scratch_buffer(std::int64_t count, std::size_t element_size,
                                       std::string_view what);
  // Counts `bytes` that the kernel's library allocates itself (oneDNN's buffers) against the cap
  // for as long as the reservation lives; the same error as scratch() when they do not fit.
  [[nodiscard]] BudgetReservation reserve_scratch(std::size_t bytes, std::string_view what);
  // Makes output i share `value` (no copy): reshape, identity and variable reads use this.
  void set_output(int i, Array value);

  template <class A>
  [[nodiscard]] const A& attrs() const {
    return *std::any_cast<A>(&node_.attrs);
  }
  [[nodiscard]] VariableStore& variables() const { return variables_; }
  // The run this kernel belongs to (for kernels that run plans of their own: While).
  [[nodiscard]] const detail::RunEnv* run_env() const { return env_; }

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
  const detail::RunEnv* env_;
};

// Calls f(T{}) with T the C++ type of a floating dtype; throws InternalError otherwise.
template <class F>
decltype(auto) dispatch_floating(DType dtype, F&& f) {
  if (dtype == DType::Float64) return f(double{});
  if (dtype != DType::Float32)
    throw InternalError(str("kernel: dtype ", dtype, " is not floating"));
  return f(float{});
}

// Calls f(T{}) with T the C++ type of a compute dtype (floating, Int64 or Bool); throws
// InternalError for Int32 and UInt8, which Graph::record keeps away from the ops that do not
// declare them (OpDef::narrow_integers).
template <class F>
decltype(auto) dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float64:
      return f(double{});
    case DType::Int64:
      return f(std::int64_t{});
    case DType::Bool:
      return f(bool{});
    case DType::Int32:
    case DType::UInt8:
      throw InternalError(str("kernel: dtype ", dtype, " is not supported here"));
    case DType::Float32:
      break;
  }
  return f(float{});
}

// Calls f(T{}) for every dtype, Int32 and UInt8 included (cast, the comparisons).
template <class F>
decltype(auto) dispatch_any(DType dtype, F&& f) {
  if (dtype == DType::Int32) return f(std::int32_t{});
  if (dtype == DType::UInt8) return f(std::uint8_t{});
  return dispatch_all(dtype, std::forward<F>(f));
}

}  // namespace ad
