// Internal: counters of the aligned storage blocks behind Arrays (for allocation tests), and the
// ordering step a sole owner takes before writing a block other threads have just released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ad::detail {

struct Storage;

// Called by the sole owner of `storage` (use_count() == 1, a relaxed load) before it writes there:
// orders the reads of threads that have just dropped their references before those writes (it
// pairs with the release in shared_ptr's decrement). An acquire fence in a normal build.
// ThreadSanitizer does not model fences (GCC warns about them under -Wtsan) and would report
// these writes as races; there, copying the shared_ptr once gives the same happens-before edge in
// a form it sees: the increment is an acq_rel read-modify-write on the count that the readers'
// decrements released.
void acquire_sole_ownership(const std::shared_ptr<Storage>& storage);

// Number of storage blocks allocated by this process so far.
[[nodiscard]] std::uint64_t storage_allocations();
// Bytes held by the storage blocks alive now.
[[nodiscard]] std::size_t storage_bytes_in_use();

}  // namespace ad::detail
