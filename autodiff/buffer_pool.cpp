// BufferPool: size-bucketed reuse of storage blocks.
#include "autodiff/buffer_pool.h"

#include <algorithm>
#include <atomic>

#include "autodiff/error.h"

namespace ad {

namespace {
constexpr std::size_t kBucket = 64;
std::size_t bucket_of(std::size_t bytes) { return (bytes + kBucket - 1) / kBucket * kBucket; }
}  // namespace

std::vector<std::shared_ptr<detail::Storage>>& BufferPool::free_blocks(std::size_t bytes) {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), bytes,
                             [](const Bucket& b, std::size_t n) { return b.bytes < n; });
  if (it == buckets_.end() || it->bytes != bytes) it = buckets_.insert(it, Bucket{bytes, {}});
  return it->free;
}

std::shared_ptr<detail::Storage> BufferPool::acquire(std::size_t bytes) {
  const std::size_t key = bucket_of(bytes);
  auto& free = free_blocks(key);
  if (!free.empty()) {
    auto storage = std::move(free.back());
    free.pop_back();
    ++reuses_;
    return storage;
  }
  if (limit_ != 0 && bytes_allocated_ + key > limit_) {
    throw ResourceExhaustedError(str("session memory limit of ", limit_,
                                     " bytes would be exceeded by ", key, " more bytes (",
                                     bytes_allocated_, " already held)"));
  }
  ++allocations_;
  bytes_allocated_ += key;
  return std::make_shared<detail::Storage>(key);
}

void BufferPool::recycle(Array& array) {
  auto storage = array.release_storage();
  // Already released (the end of a run sweeps every slot again) or without elements, so already
  // empty(): nothing to take, and resetting it would cost more than the rest of this function.
  if (!storage) return;
  // A block someone else still holds (a fetch result, a variable) leaves the pool's accounting;
  // blocks that leave are replaced on demand.
  if (storage.use_count() == 1) {
    // Another thread may have just dropped the last other reference (a fetched result): order its
    // reads before this pool's next writes (use_count() is a relaxed load; see raw_mutable_data).
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::size_t key = storage->capacity;
    free_blocks(key).push_back(std::move(storage));
  }
  array = Array();
}

}  // namespace ad
