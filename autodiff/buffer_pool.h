// BufferPool: the storage blocks a Session's runs reuse, bucketed by size, so that a steady-state
// run allocates nothing. Kernels reach it through KernelContext::allocate_output.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gradtape/autodiff/array.h"

namespace ad {

// A session's memory cap (SessionOptions::memory_limit_bytes), shared by the pools of all its
// runs: `in_use` counts the bytes of every block they allocated that is still alive, pooled, in a
// run or held by the caller as a fetched result. A block gives its bytes back the moment it is
// freed.
struct MemoryBudget {
  std::size_t limit = 0;  // 0: no cap
  std::atomic<std::size_t> in_use{0};
};

// Reusable storage blocks, bucketed by size. A block returns here when the last Array using it is
// released by the session, so a steady-state run allocates nothing. One pool serves one run at a
// time.
class BudgetReservation;

class BufferPool {
 public:
  [[nodiscard]] std::shared_ptr<detail::Storage> acquire(std::size_t bytes);
  // Takes the storage back when no other Array shares it; leaves `array` empty.
  void recycle(Array& array);
  [[nodiscard]] std::uint64_t allocations() const { return allocations_; }
  [[nodiscard]] std::uint64_t reuses() const { return reuses_; }
  [[nodiscard]] std::size_t bytes_allocated() const { return bytes_allocated_; }
  // Counts this pool's blocks against `budget` (ResourceExhaustedError when a new block would
  // exceed its limit after the pool's own free blocks are let go).
  void set_budget(std::shared_ptr<MemoryBudget> budget) { budget_ = std::move(budget); }
  // Takes a block from acquire() back (a kernel's scratch): pooled when nothing else holds it.
  void give_back(std::shared_ptr<detail::Storage> block);
  // Counts `bytes` that a library allocates by itself (oneDNN's per-thread buffers) against the
  // budget until the returned reservation is destroyed; ResourceExhaustedError as for acquire().
  [[nodiscard]] BudgetReservation reserve(std::size_t bytes);

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
  std::shared_ptr<MemoryBudget> budget_;
  // Frees the pooled blocks (to make room under the budget).
  void release_free_blocks();
};

// Bytes of a MemoryBudget held by memory the pool does not own (BufferPool::reserve), given back
// when this is destroyed. Empty (holds nothing) when the session has no cap.
class BudgetReservation {
 public:
  BudgetReservation() = default;
  BudgetReservation(std::shared_ptr<MemoryBudget> budget, std::size_t bytes)
      : budget_(std::move(budget)), bytes_(bytes) {}
  BudgetReservation(BudgetReservation&& other) noexcept
      : budget_(std::move(other.budget_)), bytes_(other.bytes_) {}
  BudgetReservation& operator=(BudgetReservation&& other) noexcept {
    release();
    budget_ = std::move(other.budget_);
    bytes_ = other.bytes_;
    return *this;
  }
  BudgetReservation(const BudgetReservation&) = delete;
  BudgetReservation& operator=(const BudgetReservation&) = delete;
  ~BudgetReservation() { release(); }

 private:
  void release() {
    if (budget_) budget_->in_use.fetch_sub(bytes_, std::memory_order_relaxed);
    budget_.reset();
  }
  std::shared_ptr<MemoryBudget> budget_;
  std::size_t bytes_ = 0;
};

}  // namespace ad
