// FileWriter: TensorBoard event files. Each record is TFRecord-framed (TF's
// core/lib/io/record_writer.cc): uint64 length, masked CRC-32C of those 8 bytes, the data, masked
// CRC-32C of the data; the data is an Event protobuf (wall_time = 1, step = 2, file_version = 3,
// summary = 5).
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "autodiff/error.h"
#include "autodiff/file_util.h"
#include "autodiff/internal/summary_proto.h"
#include "autodiff/summary.h"

namespace ad::summary {

namespace detail {

namespace {

// The CRC-32C table for the reflected polynomial 0x82F63B78.
constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1U) != 0 ? 0x82F63B78U : 0U);
    table[i] = crc;
  }
  return table;
}

constexpr auto kCrc32cTable = make_crc32c_table();

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (const char c : bytes) {
    crc = (crc >> 8) ^ kCrc32cTable[(crc ^ static_cast<unsigned char>(c)) & 0xFFU];
  }
  return crc ^ 0xFFFFFFFFU;
}

std::uint32_t masked_crc32c(std::string_view bytes) {
  const std::uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8U;
}

std::string tfrecord(std::string_view data) {
  std::string length;
  put_fixed64(length, data.size());
  std::string record = length;
  put_fixed32(record, masked_crc32c(length));
  record += data;
  put_fixed32(record, masked_crc32c(data));
  return record;
}

}  // namespace detail

namespace {

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

std::string event(double time, std::int64_t step) {
  std::string out;
  detail::put_double(out, 1, time);
  detail::put_int64(out, 2, step);
  return out;
}

}  // namespace

FileWriter::FileWriter(const std::string& logdir, FileWriterOptions options) {
  if (logdir.empty()) throw ValueError("FileWriter: the log directory is empty");
  // A NUL byte would cut the path where the C calls below read it.
  ad::detail::check_path("FileWriter", logdir + options.filename_suffix);
  std::error_code error;
  std::filesystem::create_directories(logdir, error);
  if (error) {
    throw NotFoundError(
        str("FileWriter '", logdir, "': cannot create the directory (", error.message(), ")"));
  }
  const double now = wall_time();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%010lld", static_cast<long long>(now));
  const std::string base =
      str(logdir, "/events.out.tfevents.", seconds, ".", host_name(), options.filename_suffix);
  // Never append to another writer's file of the same second: "x", then "x.1", "x.2", ...
  for (int k = 0; file_ == nullptr; ++k) {
    path_ = k == 0 ? base : str(base, ".", k);
    file_ = std::fopen(path_.c_str(), "wbx");
    if (file_ == nullptr && errno != EEXIST) {
      throw NotFoundError(str("FileWriter '", path_, "': cannot create the event file (",
                              std::strerror(errno), ")"));
    }
  }
  std::string first = event(now, 0);
  detail::put_bytes(first, 3, "brain.Event:2");
  write_event(first);
}

FileWriter::~FileWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void FileWriter::write_event(std::string_view event_bytes) {
  if (file_ == nullptr) throw FailedPreconditionError(str("FileWriter '", path_, "' is closed"));
  const std::string record = detail::tfrecord(event_bytes);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() ||
      std::fflush(file_) != 0) {
    throw ResourceExhaustedError(
        str("FileWriter '", path_, "': cannot write the event (", std::strerror(errno), ")"));
  }
}

void FileWriter::add_summary(std::string_view summary, std::int64_t global_step) {
  std::string e = event(wall_time(), global_step);
  detail::put_bytes(e, 5, summary);
  write_event(e);
}

void FileWriter::flush() {
  if (file_ == nullptr) return;
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw ResourceExhaustedError(
        str("FileWriter '", path_, "': cannot flush (", std::strerror(errno), ")"));
  }
}

void FileWriter::close() {
  if (file_ == nullptr) return;
  flush();
  std::FILE* file = file_;
  file_ = nullptr;
  if (std::fclose(file) != 0) {
    throw ResourceExhaustedError(
        str("FileWriter '", path_, "': cannot close (", std::strerror(errno), ")"));
  }
}

}  // namespace ad::summary
