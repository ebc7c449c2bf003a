// The checkpoint file format, without file I/O: a header line (magic, format version, archive
// kind, byte order, payload length, CRC-32 of the payload) followed by the payload, a Boost
// archive. Everything decoded is treated as untrusted: lengths are bounded by the payload size
// before anything is allocated.
#include "autodiff/internal/saver_format.h"

#include <array>
#include <bit>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/archive/xml_iarchive.hpp>
#include <boost/archive/xml_oarchive.hpp>
#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/nvp.hpp>
#include <charconv>
#include <cstring>
#include <istream>
#include <optional>
#include <set>
#include <sstream>
#include <streambuf>

#include "autodiff/error.h"

namespace ad::detail {

namespace {

constexpr std::string_view kMagic = "gradtape-checkpoint";
constexpr std::uint32_t kVersion = 1;
// Marks the end of the payload, so a payload cut short inside the archive cannot pass.
constexpr std::uint32_t kEndMarker = 0x444e4521;  // "!END"

// Stable dtype codes of the file format (independent of the DType enum's values).
std::uint32_t dtype_code(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return 1;
    case DType::Float64:
      return 2;
    case DType::Int64:
      return 3;
    case DType::Bool:
      return 4;
    case DType::Int32:
      return 5;
    case DType::UInt8:
      return 6;
  }
  return 0;
}

std::optional<DType> dtype_from_code(std::uint32_t code) {
  switch (code) {
    case 1:
      return DType::Float32;
    case 2:
      return DType::Float64;
    case 3:
      return DType::Int64;
    case 4:
      return DType::Bool;
    case 5:
      return DType::Int32;
    case 6:
      return DType::UInt8;
    default:
      return std::nullopt;
  }
}

std::string_view format_name(ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kText:
      return "text";
    case ArchiveFormat::kXml:
      return "xml";
    case ArchiveFormat::kBinary:
      break;
  }
  return "binary";
}

constexpr bool kLittleEndian = std::endian::native == std::endian::little;

using boost::serialization::make_nvp;

// A byte string: its length (element "<tag>_size"), then the bytes (element "<tag>", base64 in
// the text and XML archives).
template <class Archive>
void put_bytes(Archive& ar, const char* tag, const void* data, std::size_t size) {
  std::uint64_t length = size;
  const std::string size_tag = str(tag, "_size");
  ar << make_nvp(size_tag.c_str(), length);
  if (size == 0) return;
  // binary_object's save only reads the bytes; the API takes a non-const pointer.
  auto object = boost::serialization::make_binary_object(const_cast<void*>(data), size);
  ar << make_nvp(tag, object);
}

template <class Archive>
void write_payload(Archive& ar, const std::vector<CheckpointEntry>& entries) {
  put_bytes(ar, "magic", kMagic.data(), kMagic.size());
  std::uint32_t version = kVersion;
  std::uint64_t count = entries.size();
  ar << make_nvp("version", version);
  ar << make_nvp("count", count);
  for (const auto& e : entries) {
    put_bytes(ar, "name", e.name.data(), e.name.size());
    std::uint32_t code = dtype_code(e.value.dtype());
    auto rank = static_cast<std::uint32_t>(e.value.rank());
    ar << make_nvp("dtype", code);
    ar << make_nvp("rank", rank);
    for (std::int64_t d : e.value.shape().dims()) ar << make_nvp("dim", d);
    put_bytes(ar, "data", e.value.raw_data(), e.value.nbytes());
  }
  std::uint32_t end = kEndMarker;
  ar << make_nvp("end", end);
}

// Reads what put_bytes wrote into `out` (resized), refusing lengths above `budget` (the payload
// size bounds every honest length, so a forged one cannot make us allocate more than the file).
template <class Archive>
void get_bytes(Archive& ar, const char* tag, std::string& out, std::uint64_t budget) {
  std::uint64_t length = 0;
  const std::string size_tag = str(tag, "_size");
  ar >> make_nvp(size_tag.c_str(), length);
  if (length > budget)
    throw CorruptCheckpoint{str("a ", tag, " of ", length, " bytes exceeds the file")};
  out.resize(static_cast<std::size_t>(length));
  if (length == 0) return;
  auto object = boost::serialization::make_binary_object(out.data(), out.size());
  ar >> make_nvp(tag, object);
}

// The dims of entry `name` (its rank already read), each dim and the element count bounded by
// `budget` (so the count cannot overflow); the count goes to `elements`.
template <class Archive>
Shape read_entry_dims(Archive& ar, const std::string& name, std::uint32_t rank,
                      std::uint64_t budget, std::uint64_t& elements) {
  if (rank > static_cast<std::uint32_t>(Shape::kMaxRank)) {
    throw CorruptCheckpoint{str("'", name, "' has rank ", rank)};
  }
  std::vector<std::int64_t> dims(rank);
  elements = 1;
  for (auto& d : dims) {
    ar >> make_nvp("dim", d);
    if (d < 0 || static_cast<std::uint64_t>(d) > budget) {
      throw CorruptCheckpoint{str("'", name, "' has a dimension of ", d)};
    }
    // Bounded by budget before each multiplication, so this cannot overflow.
    elements *= static_cast<std::uint64_t>(d);
    if (elements > budget) throw CorruptCheckpoint{str("'", name, "' is larger than the file")};
  }
  return Shape(dims);
}

// One variable of the payload, after its name: dtype, shape and data, checked against `budget`.
template <class Archive>
Array read_entry_value(Archive& ar, const std::string& name, std::uint64_t budget) {
  std::uint32_t code = 0;
  std::uint32_t rank = 0;
  ar >> make_nvp("dtype", code);
  ar >> make_nvp("rank", rank);
  const auto dtype = dtype_from_code(code);
  if (!dtype) throw CorruptCheckpoint{str("'", name, "' has an unknown dtype code ", code)};
  std::uint64_t elements = 0;
  const Shape shape = read_entry_dims(ar, name, rank, budget, elements);
  const std::uint64_t expected = elements * dtype_size(*dtype);
  std::uint64_t length = 0;
  ar >> make_nvp("data_size", length);
  if (length != expected || expected > budget) {
    throw CorruptCheckpoint{str("'", name, "' (", *dtype, shape, ") has ", length,
                                " data bytes instead of ", expected)};
  }
  // Straight into the array: no intermediate copy of what may be most of the file.
  Array value = Array::uninitialized(*dtype, shape);
  if (expected > 0) {
    auto object = boost::serialization::make_binary_object(value.raw_mutable_data(), expected);
    ar >> make_nvp("data", object);
  }
  if (*dtype == DType::Bool) {
    const auto* raw = static_cast<const unsigned char*>(value.raw_data());
    for (std::uint64_t b = 0; b < expected; ++b) {
      if (raw[b] > 1) throw CorruptCheckpoint{str("'", name, "' holds a bool that is not 0 or 1")};
    }
  }
  return value;
}

template <class Archive>
std::vector<CheckpointEntry> read_payload(Archive& ar, std::uint64_t budget) {
  std::string magic;
  get_bytes(ar, "magic", magic, kMagic.size());
  if (magic != kMagic)
    throw CorruptCheckpoint{"the archive does not start with the gradtape magic"};
  std::uint32_t version = 0;
  std::uint64_t count = 0;
  ar >> make_nvp("version", version);
  ar >> make_nvp("count", count);
  if (version != kVersion) throw CorruptCheckpoint{str("the archive has format version ", version)};
  if (count > budget) throw CorruptCheckpoint{str("it claims ", count, " variables")};
  std::vector<CheckpointEntry> entries;
  std::set<std::string, std::less<>> seen;
  for (std::uint64_t i = 0; i < count; ++i) {
    CheckpointEntry e;
    get_bytes(ar, "name", e.name, budget);
    if (e.name.empty()) throw CorruptCheckpoint{str("variable ", i, " has an empty name")};
    if (!seen.insert(e.name).second) throw CorruptCheckpoint{str("it lists '", e.name, "' twice")};
    e.value = read_entry_value(ar, e.name, budget);
    entries.push_back(std::move(e));
  }
  std::uint32_t end = 0;
  ar >> make_nvp("end", end);
  if (end != kEndMarker) throw CorruptCheckpoint{"the archive does not end where it should"};
  return entries;
}

// No Boost archive headers: the binary and text ones load a string whose length comes from the
// file (a forged file could make it huge), and the XML one is checked in the archive's destructor,
// which cannot report an error. Our header line carries what they did.
constexpr unsigned kArchiveFlags = boost::archive::no_header;
constexpr std::string_view kXmlProlog =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?>\n"
    "<!DOCTYPE boost_serialization>\n<gradtape_checkpoint>\n";
constexpr std::string_view kXmlEpilog = "</gradtape_checkpoint>\n";

// A read-only stream over bytes in memory (no copy).
class MemoryBuffer : public std::streambuf {
 public:
  MemoryBuffer(char* begin, std::size_t size) { setg(begin, begin, begin + size); }
};

std::vector<CheckpointEntry> decode(std::span<char> payload, ArchiveFormat format) {
  MemoryBuffer buffer(payload.data(), payload.size());
  std::istream in(&buffer);
  const std::uint64_t budget = payload.size();
  switch (format) {
    case ArchiveFormat::kBinary: {
      boost::archive::binary_iarchive ar(in, kArchiveFlags);
      return read_payload(ar, budget);
    }
    case ArchiveFormat::kText: {
      boost::archive::text_iarchive ar(in, kArchiveFlags);
      return read_payload(ar, budget);
    }
    case ArchiveFormat::kXml: {
      // Our own prolog and epilog, checked here: Boost's XML archive would parse its closing tag
      // in its destructor, where a damaged one ends the process.
      const std::string_view all(payload.data(), payload.size());
      if (!all.starts_with(kXmlProlog) || !all.ends_with(kXmlEpilog) ||
          all.size() < kXmlProlog.size() + kXmlEpilog.size()) {
        throw CorruptCheckpoint{"the XML archive lacks its gradtape_checkpoint element"};
      }
      MemoryBuffer body(payload.data() + kXmlProlog.size(),
                        payload.size() - kXmlProlog.size() - kXmlEpilog.size());
      std::istream body_in(&body);
      boost::archive::xml_iarchive ar(body_in, kArchiveFlags);
      return read_payload(ar, budget);
    }
  }
  throw CorruptCheckpoint{"unknown archive format"};
}

// CRC-32 as zlib and boost::crc_32_type compute it (reflected polynomial 0xEDB88320), eight bytes
// per step with slicing tables: boost's bytewise loop runs at about 100 MB/s, which would make
// the checksum the slowest part of saving and restoring a large model.
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;

const CrcTables& crc_tables() {
  static const CrcTables kTables = [] {
    CrcTables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::size_t k = 1; k < 8; ++k) {
      for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    }
    return t;
  }();
  return kTables;
}

std::uint32_t crc32(std::string_view bytes) {
  const CrcTables& t = crc_tables();
  std::uint32_t crc = 0xFFFFFFFFU;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  if constexpr (kLittleEndian) {
    for (; n >= 8; n -= 8, p += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, p, 8);
      const auto lo = static_cast<std::uint32_t>(word) ^ crc;
      const auto hi = static_cast<std::uint32_t>(word >> 32);
      crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
            t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    }
  }
  for (; n > 0; --n, ++p) crc = t[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

template <class T>
bool parse_number(std::string_view token, T& value, int base = 10) {
  if (token.empty() || token.size() > 20) return false;
  const auto r = std::from_chars(token.data(), token.data() + token.size(), value, base);
  return r.ec == std::errc() && r.ptr == token.data() + token.size();
}

// The fields of a header line (without its newline); checks all but the length and checksum.
CheckpointHeader parse_header_line(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t pos = 0;
  while (pos <= line.size() && tokens.size() < 7) {
    const std::size_t space = line.find(' ', pos);
    const std::size_t end = space == std::string_view::npos ? line.size() : space;
    tokens.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  if (tokens.empty() || tokens[0] != kMagic) {
    throw CorruptCheckpoint{"it is not a gradtape checkpoint"};
  }
  std::uint32_t version = 0;
  if (tokens.size() < 2 || !parse_number(tokens[1], version)) {
    throw CorruptCheckpoint{"its header is damaged (no format version)"};
  }
  if (version != kVersion) {
    throw CorruptCheckpoint{str("it has checkpoint format version ", version,
                                ", which this gradtape does not read (it reads version ", kVersion,
                                ")")};
  }
  if (tokens.size() != 6) throw CorruptCheckpoint{"its header is damaged"};
  CheckpointHeader h;
  if (tokens[2] == "binary") {
    h.format = ArchiveFormat::kBinary;
  } else if (tokens[2] == "text") {
    h.format = ArchiveFormat::kText;
  } else if (tokens[2] == "xml") {
    h.format = ArchiveFormat::kXml;
  } else {
    throw CorruptCheckpoint{"its header names an unknown archive format"};
  }
  if (tokens[3] != "le" && tokens[3] != "be") {
    throw CorruptCheckpoint{"its header is damaged (byte order)"};
  }
  if ((tokens[3] == "le") != kLittleEndian) {
    throw CorruptCheckpoint{str("it was written on a ", tokens[3] == "le" ? "little" : "big",
                                "-endian machine, which this one is not")};
  }
  if (!parse_number(tokens[4], h.payload_size)) {
    throw CorruptCheckpoint{"its header is damaged (length)"};
  }
  if (tokens[5].size() > 8 || !parse_number(tokens[5], h.crc, 16)) {
    throw CorruptCheckpoint{"its header is damaged (checksum)"};
  }
  return h;
}

}  // namespace

std::string encode_checkpoint_payload(const std::vector<CheckpointEntry>& entries,
                                      ArchiveFormat format) {
  std::ostringstream out(std::ios::binary);
  switch (format) {
    case ArchiveFormat::kBinary: {
      boost::archive::binary_oarchive ar(out, kArchiveFlags);
      write_payload(ar, entries);
      break;
    }
    case ArchiveFormat::kText: {
      boost::archive::text_oarchive ar(out, kArchiveFlags);
      write_payload(ar, entries);
      break;
    }
    case ArchiveFormat::kXml: {
      out << kXmlProlog;
      {
        boost::archive::xml_oarchive ar(out, kArchiveFlags);
        write_payload(ar, entries);
      }
      out << kXmlEpilog;
      break;
    }
  }
  if (!out) throw ResourceExhaustedError("could not encode the checkpoint in memory");
  return std::move(out).str();
}

std::string checkpoint_header(ArchiveFormat format, std::string_view payload) {
  std::array<char, 9> hex{};
  const auto r = std::to_chars(hex.data(), hex.data() + 8, crc32(payload), 16);
  return str(kMagic, " ", kVersion, " ", format_name(format), " ", kLittleEndian ? "le" : "be", " ",
             payload.size(), " ", std::string_view(hex.data(), r.ptr), "\n");
}

CheckpointHeader parse_checkpoint_header(std::string_view head, std::uint64_t file_size) {
  const std::size_t newline = head.find('\n');
  if (newline == std::string_view::npos) {
    // Distinguish a cut-off header from a file of another kind.
    if (head.starts_with(kMagic) || kMagic.starts_with(head)) {
      throw CorruptCheckpoint{str("the file is truncated (", file_size, " bytes, in its header)")};
    }
    throw CorruptCheckpoint{"it is not a gradtape checkpoint"};
  }
  CheckpointHeader header = parse_header_line(head.substr(0, newline));
  header.payload_offset = newline + 1;
  const std::uint64_t available = file_size - header.payload_offset;
  if (available < header.payload_size) {
    throw CorruptCheckpoint{str("the file is truncated: ", available, " of ", header.payload_size,
                                " payload bytes are there")};
  }
  if (available > header.payload_size) {
    throw CorruptCheckpoint{str("the file has ", available - header.payload_size,
                                " unexpected bytes after its payload")};
  }
  return header;
}

std::vector<CheckpointEntry> decode_checkpoint_payload(std::span<char> payload,
                                                       const CheckpointHeader& header) {
  if (crc32({payload.data(), payload.size()}) != header.crc) {
    throw CorruptCheckpoint{"the checksum does not match: the file is corrupted"};
  }
  return decode(payload, header.format);
}

}  // namespace ad::detail
