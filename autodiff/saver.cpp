// Saver: checkpoint encoding (header line + Boost archive), atomic writes and all-or-nothing
// restores. Everything read from a file is treated as untrusted: lengths are bounded by the file
// size before anything is allocated, and every Boost or std exception becomes an ad::Error.
#include "autodiff/saver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/archive/xml_iarchive.hpp>
#include <boost/archive/xml_oarchive.hpp>
#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/nvp.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <istream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <sstream>
#include <streambuf>

#include "autodiff/error.h"
#include "autodiff/session.h"
#include "autodiff/warnings.h"

namespace ad {

namespace detail {
std::function<void(std::string_view stage)> saver_fault_hook;
}  // namespace detail

namespace {

constexpr std::string_view kMagic = "gradtape-checkpoint";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kMaxHeaderBytes = 128;
// Marks the end of the payload, so a payload cut short inside the archive cannot pass.
constexpr std::uint32_t kEndMarker = 0x444e4521;  // "!END"

struct Entry {
  std::string name;
  Array value;
};

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

// Raised while decoding; restore() adds the file name.
struct Corrupt {
  std::string what;
};

// ---- Payload encoding ---------------------------------------------------------------------------

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
void write_payload(Archive& ar, const std::vector<Entry>& entries) {
  put_bytes(ar, "magic", kMagic.data(), kMagic.size());
  std::uint32_t version = kVersion;
  std::uint64_t count = entries.size();
  ar << make_nvp("version", version);
  ar << make_nvp("count", count);
  for (const auto& e : entries) {
    put_bytes(ar, "name", e.name.data(), e.name.size());
    std::uint32_t code = dtype_code(e.value.dtype());
    std::uint32_t rank = static_cast<std::uint32_t>(e.value.rank());
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
  if (length > budget) throw Corrupt{str("a ", tag, " of ", length, " bytes exceeds the file")};
  out.resize(static_cast<std::size_t>(length));
  if (length == 0) return;
  auto object = boost::serialization::make_binary_object(out.data(), out.size());
  ar >> make_nvp(tag, object);
}

template <class Archive>
std::vector<Entry> read_payload(Archive& ar, std::uint64_t budget) {
  std::string magic;
  get_bytes(ar, "magic", magic, kMagic.size());
  if (magic != kMagic) throw Corrupt{"the archive does not start with the gradtape magic"};
  std::uint32_t version = 0;
  std::uint64_t count = 0;
  ar >> make_nvp("version", version);
  ar >> make_nvp("count", count);
  if (version != kVersion) throw Corrupt{str("the archive has format version ", version)};
  if (count > budget) throw Corrupt{str("it claims ", count, " variables")};
  std::vector<Entry> entries;
  std::map<std::string, int, std::less<>> seen;
  for (std::uint64_t i = 0; i < count; ++i) {
    Entry e;
    get_bytes(ar, "name", e.name, budget);
    if (e.name.empty()) throw Corrupt{str("variable ", i, " has an empty name")};
    if (!seen.emplace(e.name, 0).second) throw Corrupt{str("it lists '", e.name, "' twice")};
    std::uint32_t code = 0;
    std::uint32_t rank = 0;
    ar >> make_nvp("dtype", code);
    ar >> make_nvp("rank", rank);
    const auto dtype = dtype_from_code(code);
    if (!dtype) throw Corrupt{str("'", e.name, "' has an unknown dtype code ", code)};
    if (rank > static_cast<std::uint32_t>(Shape::kMaxRank)) {
      throw Corrupt{str("'", e.name, "' has rank ", rank)};
    }
    std::vector<std::int64_t> dims(rank);
    std::uint64_t elements = 1;
    for (auto& d : dims) {
      ar >> make_nvp("dim", d);
      if (d < 0 || static_cast<std::uint64_t>(d) > budget) {
        throw Corrupt{str("'", e.name, "' has a dimension of ", d)};
      }
      // Bounded by budget before each multiplication, so this cannot overflow.
      elements *= static_cast<std::uint64_t>(d);
      if (elements > budget) throw Corrupt{str("'", e.name, "' is larger than the file")};
    }
    const Shape shape(dims);
    const std::uint64_t expected = elements * dtype_size(*dtype);
    std::uint64_t length = 0;
    ar >> make_nvp("data_size", length);
    if (length != expected || expected > budget) {
      throw Corrupt{str("'", e.name, "' (", *dtype, shape, ") has ", length,
                        " data bytes instead of ", expected)};
    }
    // Straight into the array: no intermediate copy of what may be most of the file.
    e.value = Array::uninitialized(*dtype, shape);
    if (expected > 0) {
      auto object = boost::serialization::make_binary_object(e.value.raw_mutable_data(), expected);
      ar >> make_nvp("data", object);
    }
    if (*dtype == DType::Bool) {
      const auto* raw = static_cast<const unsigned char*>(e.value.raw_data());
      for (std::uint64_t b = 0; b < expected; ++b) {
        if (raw[b] > 1) throw Corrupt{str("'", e.name, "' holds a bool that is not 0 or 1")};
      }
    }
    entries.push_back(std::move(e));
  }
  std::uint32_t end = 0;
  ar >> make_nvp("end", end);
  if (end != kEndMarker) throw Corrupt{"the archive does not end where it should"};
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

std::string encode(const std::vector<Entry>& entries, ArchiveFormat format) {
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

// A read-only stream over bytes in memory (no copy).
class MemoryBuffer : public std::streambuf {
 public:
  MemoryBuffer(char* begin, std::size_t size) { setg(begin, begin, begin + size); }
};

std::vector<Entry> decode(std::span<char> payload, ArchiveFormat format) {
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
        throw Corrupt{"the XML archive lacks its gradtape_checkpoint element"};
      }
      MemoryBuffer body(payload.data() + kXmlProlog.size(),
                        payload.size() - kXmlProlog.size() - kXmlEpilog.size());
      std::istream body_in(&body);
      boost::archive::xml_iarchive ar(body_in, kArchiveFlags);
      return read_payload(ar, budget);
    }
  }
  throw Corrupt{"unknown archive format"};
}

// CRC-32 as zlib and boost::crc_32_type compute it (reflected polynomial 0xEDB88320), eight bytes
// per step with slicing tables: boost's bytewise loop runs at about 100 MB/s, which would make
// the checksum the slowest part of saving and restoring a large model.
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;

const CrcTables& crc_tables() {
  static const CrcTables tables = [] {
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
  return tables;
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

// ---- Header line --------------------------------------------------------------------------------
// "gradtape-checkpoint <version> <binary|text|xml> <le|be> <payload bytes> <crc32 hex>\n"

std::string make_header(ArchiveFormat format, std::size_t payload_size, std::uint32_t crc) {
  std::array<char, 9> hex{};
  const auto r = std::to_chars(hex.data(), hex.data() + 8, crc, 16);
  return str(kMagic, " ", kVersion, " ", format_name(format), " ", kLittleEndian ? "le" : "be", " ",
             payload_size, " ", std::string_view(hex.data(), r.ptr), "\n");
}

struct Header {
  ArchiveFormat format = ArchiveFormat::kBinary;
  std::uint64_t payload_size = 0;
  std::uint32_t crc = 0;
};

template <class T>
bool parse_number(std::string_view token, T& value, int base = 10) {
  if (token.empty() || token.size() > 20) return false;
  const auto r = std::from_chars(token.data(), token.data() + token.size(), value, base);
  return r.ec == std::errc() && r.ptr == token.data() + token.size();
}

Header parse_header(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t pos = 0;
  while (pos <= line.size() && tokens.size() < 7) {
    const std::size_t space = line.find(' ', pos);
    const std::size_t end = space == std::string_view::npos ? line.size() : space;
    tokens.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  if (tokens.empty() || tokens[0] != kMagic) throw Corrupt{"it is not a gradtape checkpoint"};
  std::uint32_t version = 0;
  if (tokens.size() < 2 || !parse_number(tokens[1], version)) {
    throw Corrupt{"its header is damaged (no format version)"};
  }
  if (version != kVersion) {
    throw Corrupt{str("it has checkpoint format version ", version, ", which this gradtape ",
                      "does not read (it reads version ", kVersion, ")")};
  }
  if (tokens.size() != 6) throw Corrupt{"its header is damaged"};
  Header h;
  if (tokens[2] == "binary") {
    h.format = ArchiveFormat::kBinary;
  } else if (tokens[2] == "text") {
    h.format = ArchiveFormat::kText;
  } else if (tokens[2] == "xml") {
    h.format = ArchiveFormat::kXml;
  } else {
    throw Corrupt{str("its header names an unknown archive format")};
  }
  if (tokens[3] != "le" && tokens[3] != "be") throw Corrupt{"its header is damaged (byte order)"};
  if ((tokens[3] == "le") != kLittleEndian) {
    throw Corrupt{str("it was written on a ", tokens[3] == "le" ? "little" : "big",
                      "-endian machine, which this one is not")};
  }
  if (!parse_number(tokens[4], h.payload_size)) throw Corrupt{"its header is damaged (length)"};
  if (tokens[5].size() > 8 || !parse_number(tokens[5], h.crc, 16)) {
    throw Corrupt{"its header is damaged (checksum)"};
  }
  return h;
}

// ---- File I/O -----------------------------------------------------------------------------------

[[noreturn]] void throw_io(const std::string& prefix, int err) {
  const std::string message = str(prefix, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
      throw NotFoundError(message);
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
      throw ResourceExhaustedError(message);
    case EIO:
      throw DataLossError(message);
    default:
      throw FailedPreconditionError(message);
  }
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&&) = delete;
  FileDescriptor& operator=(FileDescriptor&&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }
  // Closes now and reports close's error (it can carry a delayed write error).
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

void write_all(int fd, std::string_view bytes, const std::string& prefix) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(prefix, errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads exactly `size` bytes at `offset`; returns how many were there.
std::size_t read_at(int fd, char* out, std::size_t size, off_t offset, const std::string& prefix) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(prefix, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

std::string directory_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string random_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      (static_cast<std::uint64_t>(::getpid()) << 32) ^ (counter++ * 0x9E3779B97F4A7C15ULL);
  // splitmix64 finalizer: spreads the bits so names differ in their first characters.
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  std::array<char, 17> hex{};
  const auto r = std::to_chars(hex.data(), hex.data() + 16, x, 16);
  return std::string(hex.data(), r.ptr);
}

void fault(std::string_view stage) {
  if (detail::saver_fault_hook) detail::saver_fault_hook(stage);
}

// Writes `header` + `payload` to a fresh temporary file next to `path`, fsyncs it and renames it
// over `path`. On any failure the temporary file is removed and `path` is untouched.
void write_atomically(const std::string& path, std::string_view header, std::string_view payload) {
  const std::string prefix = str("save '", path, "'");
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp = str(path, ".tmp.", random_suffix());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) {
      throw_io(str(prefix, ": cannot create a temporary file in '", directory_of(path), "'"),
               errno);
    }
  }
  if (fd < 0) throw_io(str(prefix, ": cannot create a temporary file"), EEXIST);
  FileDescriptor file(fd);
  try {
    write_all(fd, header, prefix);
    const std::size_t half = payload.size() / 2;
    write_all(fd, payload.substr(0, half), prefix);
    fault("write");
    write_all(fd, payload.substr(half), prefix);
    fault("fsync");
    if (::fsync(fd) != 0) throw_io(str(prefix, ": fsync failed"), errno);
    if (file.close() != 0) throw_io(str(prefix, ": close failed"), errno);
    fault("rename");
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw_io(str(prefix, ": cannot rename '", temp, "' into place"), errno);
    }
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  // Make the rename itself durable; a failure here leaves a complete file either way.
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

// Reads and fully decodes the checkpoint at `path`; throws ad::Error naming the file.
std::vector<Entry> read_checkpoint(const std::string& path) {
  const std::string prefix = str("restore '", path, "'");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io(str(prefix, ": cannot open the checkpoint"), errno);
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) throw_io(prefix, errno);
  if (!S_ISREG(info.st_mode)) throw NotFoundError(str(prefix, ": not a regular file"));
  const auto file_size = static_cast<std::uint64_t>(info.st_size);
  try {
    std::array<char, kMaxHeaderBytes> head{};
    const std::size_t got = read_at(fd, head.data(), head.size(), 0, prefix);
    const std::string_view start(head.data(), got);
    const std::size_t newline = start.find('\n');
    if (newline == std::string_view::npos) {
      // Distinguish a cut-off header from a file of another kind.
      if (start.starts_with(kMagic) || std::string_view(kMagic).starts_with(start)) {
        throw Corrupt{str("the file is truncated (", file_size, " bytes, in its header)")};
      }
      throw Corrupt{"it is not a gradtape checkpoint"};
    }
    const Header header = parse_header(start.substr(0, newline));
    const std::uint64_t available = file_size - (newline + 1);
    if (available < header.payload_size) {
      throw Corrupt{str("the file is truncated: ", available, " of ", header.payload_size,
                        " payload bytes are there")};
    }
    if (available > header.payload_size) {
      throw Corrupt{str("the file has ", available - header.payload_size,
                        " unexpected bytes after its payload")};
    }
    const auto size = static_cast<std::size_t>(header.payload_size);
    const auto storage = std::make_unique_for_overwrite<char[]>(size);
    const std::span<char> payload(storage.get(), size);
    const std::size_t read =
        read_at(fd, payload.data(), payload.size(), static_cast<off_t>(newline + 1), prefix);
    if (read != payload.size()) throw Corrupt{"the file shrank while it was read"};
    if (crc32({payload.data(), payload.size()}) != header.crc) {
      throw Corrupt{"the checksum does not match: the file is corrupted"};
    }
    return decode(payload, header.format);
  } catch (const Corrupt& e) {
    throw DataLossError(str(prefix, ": ", e.what));
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(prefix, ": out of memory while reading the checkpoint"));
  } catch (const std::exception& e) {
    throw DataLossError(str(prefix, ": the archive is damaged (", e.what(), ")"));
  }
}

std::string_view scope_of(std::string_view name) {
  const std::size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : name.substr(0, slash);
}

// TF users lose models when a Saver built from trainable_variables() leaves out the moving
// statistics next to the weights: warn when a global variable is not saved although a variable of
// the same scope is (bn/moving_mean left out while bn/gamma is saved).
void warn_about_left_out_siblings(const Graph& graph,
                                  const std::map<std::string, int, std::less<>>& saved) {
  std::map<std::string_view, std::string_view, std::less<>> saved_scopes;
  for (const auto& [name, unused] : saved) saved_scopes.emplace(scope_of(name), name);
  std::vector<std::pair<std::string, std::string_view>> left_out;
  for (const auto& v : global_variables(graph)) {
    if (saved.contains(v.name())) continue;
    const auto it = saved_scopes.find(scope_of(v.name()));
    if (it != saved_scopes.end()) left_out.emplace_back(v.name(), it->second);
  }
  if (left_out.empty()) return;
  warn(str("Saver: '", left_out.front().first, "' is not saved although '", left_out.front().second,
           "' in the same scope is",
           left_out.size() > 1 ? str(" (and ", left_out.size() - 1, " more such variables)") : "",
           "; a restore leaves it at its initial value. Moving statistics belong in the "
           "checkpoint: use the default var_list (every global variable) or add them"));
}

}  // namespace

Saver::Saver(Graph& graph, std::vector<Variable> var_list, SaverOptions options)
    : graph_(&graph), var_list_(std::move(var_list)), options_(options) {
  if (var_list_.empty()) var_list_ = global_variables(graph);
  if (var_list_.empty()) throw ValueError("Saver: no variables to save");
  std::map<std::string, int, std::less<>> names;
  for (const auto& v : var_list_) {
    if (!v) throw ValueError("Saver: the variable list holds an empty Variable");
    if (&v.graph() != graph_) {
      throw ValueError(str("Saver: variable '", v.name(), "' belongs to another graph"));
    }
    if (!names.emplace(v.name(), 0).second) {
      throw ValueError(str("Saver: variable '", v.name(), "' is listed twice"));
    }
  }
  warn_about_left_out_siblings(graph, names);
}

void Saver::save(Session& session, const std::string& path) const {
  const std::string prefix = str("save '", path, "'");
  if (&session.graph() != graph_) {
    throw ValueError(str(prefix, ": the session runs another graph than the Saver's"));
  }
  if (path.empty()) throw ValueError("save: the path is empty");
  std::vector<Entry> entries;
  entries.reserve(var_list_.size());
  for (const auto& v : var_list_) {
    try {
      entries.push_back({v.name(), session.value(v)});
    } catch (const FailedPreconditionError& e) {
      throw FailedPreconditionError(str(prefix, ": ", e.what()));
    }
  }
  std::string payload;
  try {
    payload = encode(entries, options_.format);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(prefix, ": out of memory while encoding the checkpoint"));
  } catch (const std::exception& e) {
    throw InternalError(str(prefix, ": encoding failed: ", e.what()));
  }
  write_atomically(path, make_header(options_.format, payload.size(), crc32(payload)), payload);
}

void Saver::restore(Session& session, const std::string& path) const {
  const std::string prefix = str("restore '", path, "'");
  if (&session.graph() != graph_) {
    throw ValueError(str(prefix, ": the session runs another graph than the Saver's"));
  }
  const std::vector<Entry> entries = read_checkpoint(path);
  std::map<std::string_view, const Entry*, std::less<>> by_name;
  for (const auto& e : entries) by_name.emplace(e.name, &e);
  // Validate everything before the first change.
  std::vector<const Array*> values;
  values.reserve(var_list_.size());
  for (const auto& v : var_list_) {
    const auto it = by_name.find(v.name());
    if (it == by_name.end()) {
      throw NotFoundError(str(prefix, ": variable '", v.name(), "' is not in the checkpoint (it ",
                              "holds ", entries.size(), " variables)"));
    }
    const Array& value = it->second->value;
    if (value.dtype() != v.dtype()) {
      throw InvalidArgumentError(str(prefix, ": '", v.name(), "' is ", value.dtype(),
                                     " in the file but ", v.dtype(), " in the model"));
    }
    if (!(value.shape() == v.shape())) {
      throw InvalidArgumentError(str(prefix, ": '", v.name(), "' is ", value.shape(),
                                     " in the file but ", v.shape(), " in the model"));
    }
    values.push_back(&value);
  }
  for (std::size_t i = 0; i < var_list_.size(); ++i) session.set_value(var_list_[i], *values[i]);
}

}  // namespace ad
