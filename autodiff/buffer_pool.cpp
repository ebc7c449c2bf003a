// BufferPool: size-bucketed reuse of storage blocks.
#include "autodiff/buffer_pool.h"

#include <algorithm>
#include <atomic>

#include "autodiff/error.h"
#include "autodiff/internal/storage_stats.h"

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

namespace {
// Charges `bytes` to the budget; when they do not fit, calls make_room() once and tries again.
template <class F>
void charge(MemoryBudget& budget, std::size_t bytes, F&& make_room) {
  for (int attempt = 0;; ++attempt) {
    const std::size_t before = budget.in_use.fetch_add(bytes, std::memory_order_relaxed);
    if (budget.limit == 0 || before + bytes <= budget.limit) return;
    budget.in_use.fetch_sub(bytes, std::memory_order_relaxed);
    if (attempt == 0) {
      make_room();
      continue;
    }
    throw ResourceExhaustedError(str("session memory limit of ", budget.limit,
                                     " bytes would be exceeded by ", bytes, " more bytes (", before,
                                     " already held)"));
  }
}
}  // namespace

std::shared_ptr<detail::Storage> BufferPool::acquire(std::size_t bytes) {
  const std::size_t key = bucket_of(bytes);
  auto& free = free_blocks(key);
  if (!free.empty()) {
    auto storage = std::move(free.back());
    free.pop_back();
    ++reuses_;
    return storage;
  }
  if (budget_) charge(*budget_, key, [this] { release_free_blocks(); });
  ++allocations_;
  bytes_allocated_ += key;
  if (!budget_) return std::make_shared<detail::Storage>(key);
  detail::Storage* storage = nullptr;
  try {
    storage = new detail::Storage(key);
  } catch (...) {
    budget_->in_use.fetch_sub(key, std::memory_order_relaxed);
    throw;
  }
  // The block gives its bytes back when freed, wherever it is then (pooled, or a fetched result);
  // should the control block fail to allocate, the deleter runs too.
  return {storage, [budget = budget_, key](detail::Storage* block) {
            delete block;
            budget->in_use.fetch_sub(key, std::memory_order_relaxed);
          }};
}

void BufferPool::give_back(std::shared_ptr<detail::Storage> block) {
  if (!block || block.use_count() != 1 || block->capacity != bucket_of(block->capacity)) return;
  const std::size_t key = block->capacity;
  free_blocks(key).push_back(std::move(block));
}

BudgetReservation BufferPool::reserve(std::size_t bytes) {
  if (!budget_ || bytes == 0) return {};
  charge(*budget_, bytes, [this] { release_free_blocks(); });
  return {budget_, bytes};
}

void BufferPool::release_free_blocks() {
  for (auto& bucket : buckets_) bucket.free.clear();
}

void BufferPool::recycle(Array& array) {
  auto storage = array.release_storage();
  // Already released (the end of a run sweeps every slot again) or without elements, so already
  // empty(): nothing to take, and resetting it would cost more than the rest of this function.
  if (!storage) return;
  // A block someone else still holds (a fetch result, a variable) leaves the pool's accounting;
  // blocks that leave are replaced on demand.
  // Only blocks of a bucket size are pooled: a block of another size (a variable's copy-on-write
  // copy, made to its exact size) would sit in a size class no acquire asks for, and the pool
  // would grow by one such block per run; it is freed instead.
  if (storage.use_count() == 1 && storage->capacity == bucket_of(storage->capacity)) {
    // Another thread may have just dropped the last other reference (a fetched result): order its
    // reads before this pool's next writes (use_count() is a relaxed load; see storage_stats.h).
    detail::acquire_sole_ownership(storage);
    const std::size_t key = storage->capacity;
    free_blocks(key).push_back(std::move(storage));
  }
  array = Array();
}

}  // namespace ad
