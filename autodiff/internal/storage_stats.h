// Internal: counters of the aligned storage blocks behind Arrays, for allocation tests.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ad::detail {

// Number of storage blocks allocated by this process so far.
[[nodiscard]] std::uint64_t storage_allocations();
// Bytes held by the storage blocks alive now.
[[nodiscard]] std::size_t storage_bytes_in_use();

}  // namespace ad::detail
