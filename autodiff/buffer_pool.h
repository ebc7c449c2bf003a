// BufferPool: the storage blocks a Session's runs reuse, bucketed by size, so that a steady-state
// run allocates nothing. Kernels reach it through KernelContext::allocate_output.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "autodiff/array.h"

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

}  // namespace ad
