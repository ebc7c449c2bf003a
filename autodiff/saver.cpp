// Saver: atomic checkpoint writes and all-or-nothing restores (the format itself is in
// saver_format.cpp). Every Boost or std exception from decoding becomes an ad::Error naming the
// file.
#include "autodiff/saver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <span>

#include "autodiff/error.h"
#include "autodiff/file_util.h"
#include "autodiff/saver_format.h"
#include "autodiff/session.h"
#include "autodiff/warnings.h"

namespace ad {

namespace detail {
std::function<void(std::string_view stage)> saver_fault_hook;
}  // namespace detail

namespace {

using detail::CheckpointEntry;
using detail::CorruptCheckpoint;

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
std::vector<CheckpointEntry> read_checkpoint(const std::string& path) {
  const std::string prefix = str("restore '", path, "'");
  const int fd = detail::open_regular_file("restore", path);  // never blocks on a FIFO
  if (fd < 0) throw_io(str(prefix, ": cannot open the checkpoint"), errno);
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) throw_io(prefix, errno);
  if (!S_ISREG(info.st_mode)) throw NotFoundError(str(prefix, ": not a regular file"));
  try {
    std::array<char, detail::kMaxCheckpointHeaderBytes> head{};
    const std::size_t got = read_at(fd, head.data(), head.size(), 0, prefix);
    const auto header = detail::parse_checkpoint_header({head.data(), got},
                                                        static_cast<std::uint64_t>(info.st_size));
    const auto size = static_cast<std::size_t>(header.payload_size);
    const auto storage = std::make_unique_for_overwrite<char[]>(size);
    const std::span<char> payload(storage.get(), size);
    const std::size_t read = read_at(fd, payload.data(), payload.size(),
                                     static_cast<off_t>(header.payload_offset), prefix);
    if (read != payload.size()) throw CorruptCheckpoint{"the file shrank while it was read"};
    return detail::decode_checkpoint_payload(payload, header);
  } catch (const CorruptCheckpoint& e) {
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
                                  const std::set<std::string, std::less<>>& saved) {
  std::map<std::string_view, std::string_view, std::less<>> saved_scopes;
  for (const auto& name : saved) saved_scopes.emplace(scope_of(name), name);
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
  std::set<std::string, std::less<>> names;
  for (const auto& v : var_list_) {
    if (!v) throw ValueError("Saver: the variable list holds an empty Variable");
    if (&v.graph() != graph_) {
      throw ValueError(str("Saver: variable '", v.name(), "' belongs to another graph"));
    }
    if (!names.insert(v.name()).second) {
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
  detail::check_path("save", path);
  std::vector<CheckpointEntry> entries;
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
    payload = detail::encode_checkpoint_payload(entries, options_.format);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(prefix, ": out of memory while encoding the checkpoint"));
  } catch (const std::exception& e) {
    throw InternalError(str(prefix, ": encoding failed: ", e.what()));
  }
  write_atomically(path, detail::checkpoint_header(options_.format, payload), payload);
}

void Saver::restore(Session& session, const std::string& path) const {
  const std::string prefix = str("restore '", path, "'");
  if (&session.graph() != graph_) {
    throw ValueError(str(prefix, ": the session runs another graph than the Saver's"));
  }
  const std::vector<CheckpointEntry> entries = read_checkpoint(path);
  std::map<std::string_view, const CheckpointEntry*, std::less<>> by_name;
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
