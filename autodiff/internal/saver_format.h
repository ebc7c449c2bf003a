// The Saver's checkpoint format, without file I/O (internal to saver.cpp). A checkpoint is a
// header line, "gradtape-checkpoint <version> <binary|text|xml> <le|be> <payload bytes> <crc32
// hex>\n", then the payload: a Boost archive holding a magic string, the format version, the
// variable count, per variable its name, dtype code, rank, dims and raw bytes, and an end marker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/saver.h"

namespace ad::detail {

// For tests only: when set, save() calls it at each stage ("write": half the bytes written,
// "fsync", "rename": just before the rename; "state": after a managed save's checkpoint is in
// place, before its state file is written; "rotate": after the state file, before old checkpoints
// are deleted) so a test can inject a failure or a crash there.
extern std::function<void(std::string_view stage)> saver_fault_hook;

struct CheckpointEntry {
  std::string name;
  Array value;
};

// Thrown while decoding, saying what is wrong with the file; the Saver adds the file's name.
struct CorruptCheckpoint {
  std::string what;
};

// An honest header line, newline included, is shorter than this.
inline constexpr std::size_t kMaxCheckpointHeaderBytes = 128;

struct CheckpointHeader {
  ArchiveFormat format = ArchiveFormat::kBinary;
  std::uint64_t payload_offset = 0;  // the header line's length, newline included
  std::uint64_t payload_size = 0;
  std::uint32_t crc = 0;
};

// The payload holding `entries`, in the archive kind `format`.
[[nodiscard]] std::string encode_checkpoint_payload(const std::vector<CheckpointEntry>& entries,
                                                    ArchiveFormat format);

// The header line for `payload`, newline included.
[[nodiscard]] std::string checkpoint_header(ArchiveFormat format, std::string_view payload);

// Parses the header line at the start of `head` (the first kMaxCheckpointHeaderBytes bytes of a
// file of `file_size` bytes, or all of a shorter one) and checks that the payload it announces
// fills the rest of the file exactly. Throws CorruptCheckpoint.
[[nodiscard]] CheckpointHeader parse_checkpoint_header(std::string_view head,
                                                       std::uint64_t file_size);

// Checks `payload` against the header's CRC-32 and decodes it. Throws CorruptCheckpoint, or
// whatever Boost or the standard library throws on a damaged archive.
[[nodiscard]] std::vector<CheckpointEntry> decode_checkpoint_payload(
    std::span<char> payload, const CheckpointHeader& header);

}  // namespace ad::detail
