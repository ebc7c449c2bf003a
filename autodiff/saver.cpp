// Saver: atomic checkpoint writes and all-or-nothing restores (the format itself is in
// saver_format.cpp). Every Boost or std exception from decoding becomes an ad::Error naming the
// file.
#include "autodiff/saver.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include "autodiff/internal/saver_format.h"
#include "autodiff/internal/saver_io.h"
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

using detail::directory_of;

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

void fault(std::string_view stage) { detail::saver_fault(stage); }

// True when `fd` is still the file `name` refers to (a cleaner may have removed it between our
// open and our lock).
bool still_named(int fd, const std::string& name) {
  struct stat by_fd {};
  struct stat by_name {};
  return ::fstat(fd, &by_fd) == 0 && ::stat(name.c_str(), &by_name) == 0 &&
         by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino;
}

// Creates a fresh temporary file next to `path`, locked (flock) so that remove_stray_temporaries
// leaves it alone while this process lives. Returns its descriptor and sets `temp` to its name.
int create_locked_temporary(const std::string& path, const std::string& prefix, std::string& temp) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp = str(path, ".tmp.", random_suffix());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) {
      throw_io(str(prefix, ": cannot create a temporary file in '", directory_of(path), "'"),
               errno);
    }
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(fd, temp)) return fd;
    ::close(fd);  // taken over by a cleaner in between: try another name
  }
  throw_io(str(prefix, ": cannot create a temporary file"), EEXIST);
}

// A name "<base>.tmp.<1 to 16 hex digits>", or with `any_step` "<base>-<step>.tmp.<hex>".
bool is_temporary_of(std::string_view name, std::string_view base, bool any_step) {
  if (name.size() <= base.size() + 5 || !name.starts_with(base)) return false;
  name.remove_prefix(base.size());
  if (any_step) {
    if (!name.starts_with('-')) return false;
    name.remove_prefix(1);
    if (name.starts_with('-')) name.remove_prefix(1);
    const std::size_t digits = name.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string_view::npos) return false;
    name.remove_prefix(digits);
  }
  if (!name.starts_with(".tmp.")) return false;
  name.remove_prefix(5);
  if (name.size() > 16) return false;
  for (const char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Writes `header` + `payload` to a fresh temporary file next to `path`, fsyncs it and renames it
// over `path`. On any failure the temporary file is removed and `path` is untouched.
void write_atomically(const std::string& path, std::string_view header, std::string_view payload,
                      const std::string& prefix) {
  std::string temp;
  FileDescriptor file(create_locked_temporary(path, prefix, temp));
  const int fd = file.get();
  try {
    write_all(fd, header, prefix);
    const std::size_t half = payload.size() / 2;
    write_all(fd, payload.substr(0, half), prefix);
    fault("write");
    write_all(fd, payload.substr(half), prefix);
    fault("fsync");
    if (::fsync(fd) != 0) throw_io(str(prefix, ": fsync failed"), errno);
    fault("rename");
    // Renamed while still open and locked, so no cleaner can take the file meanwhile.
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw_io(str(prefix, ": cannot rename '", temp, "' into place"), errno);
    }
    if (file.close() != 0) throw_io(str(prefix, ": close failed"), errno);
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

namespace detail {

std::string directory_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void saver_fault(std::string_view stage) {
  if (saver_fault_hook) saver_fault_hook(stage);
}

void write_file_atomically(const std::string& path, std::string_view header,
                           std::string_view payload, const std::string& what) {
  write_atomically(path, header, payload, what);
}

void remove_stray_temporaries(const std::string& path, bool any_step) {
  const std::string directory = directory_of(path);
  const std::size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return;  // the save or restore itself reports a missing directory
  std::vector<std::string> candidates;
  while (const dirent* entry = ::readdir(dir)) {
    if (is_temporary_of(entry->d_name, base, any_step)) candidates.emplace_back(entry->d_name);
  }
  ::closedir(dir);
  for (const auto& name : candidates) {
    const std::string full = directory == "." && slash == std::string::npos
                                 ? name
                                 : str(directory == "/" ? "" : directory, "/", name);
    const int fd = ::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    const FileDescriptor file(fd);
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) continue;
    // A live save holds its lock until its rename; a killed one released it with the process.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(fd, full)) ::unlink(full.c_str());
  }
}

}  // namespace detail

Saver::Saver(Graph& graph, std::vector<Variable> var_list, SaverOptions options)
    : graph_(&graph), var_list_(std::move(var_list)), options_(std::move(options)) {
  if (var_list_.empty()) var_list_ = global_variables(graph);
  if (var_list_.empty()) throw ValueError("Saver: no variables to save");
  for (const auto& v : var_list_) {
    if (!v) throw ValueError("Saver: the variable list holds an empty Variable");
    names_.push_back(v.name());
  }
  check_list();
  warn_about_left_out_siblings(graph, {names_.begin(), names_.end()});
}

Saver::Saver(Named /*tag*/, Graph& graph, std::vector<std::pair<std::string, Variable>> names,
             SaverOptions options)
    : graph_(&graph), options_(std::move(options)) {
  if (names.empty()) throw ValueError("Saver: the name -> variable map is empty");
  for (auto& [name, v] : names) {
    if (!v) throw ValueError(str("Saver: '", name, "' maps to an empty Variable"));
    if (name.empty()) throw ValueError(str("Saver: variable '", v.name(), "' has an empty name"));
    names_.push_back(std::move(name));
    var_list_.push_back(v);
  }
  check_list();
}

void Saver::check_list() {
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < var_list_.size(); ++i) {
    const Variable& v = var_list_[i];
    if (&v.graph() != graph_) {
      throw ValueError(str("Saver: variable '", v.name(), "' belongs to another graph"));
    }
    if (!names.insert(names_[i]).second) {
      throw ValueError(str("Saver: variable '", names_[i], "' is listed twice"));
    }
  }
  if (options_.max_to_keep < 0) {
    throw ValueError(str("Saver: max_to_keep is ", options_.max_to_keep, "; use 0 to keep all"));
  }
  if (!(options_.keep_checkpoint_every_n_hours > 0)) {
    throw ValueError(str("Saver: keep_checkpoint_every_n_hours must be positive, got ",
                         options_.keep_checkpoint_every_n_hours));
  }
  // As TF: the first checkpoint kept for good is one made n hours after the Saver.
  next_checkpoint_time_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() +
      options_.keep_checkpoint_every_n_hours * 3600;
  if (options_.latest_filename.empty() || options_.latest_filename.find('/') != std::string::npos) {
    throw ValueError(
        str("Saver: latest_filename '", options_.latest_filename, "' must be a plain file name"));
  }
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
  for (std::size_t i = 0; i < var_list_.size(); ++i) {
    const Variable& v = var_list_[i];
    try {
      entries.push_back({names_[i], session.value(v)});
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
  detail::remove_stray_temporaries(path);
  write_atomically(path, detail::checkpoint_header(options_.format, payload), payload, prefix);
}

void Saver::restore(Session& session, const std::string& path) const {
  const std::string prefix = str("restore '", path, "'");
  if (&session.graph() != graph_) {
    throw ValueError(str(prefix, ": the session runs another graph than the Saver's"));
  }
  detail::remove_stray_temporaries(path);
  const std::vector<CheckpointEntry> entries = read_checkpoint(path);
  std::map<std::string_view, const CheckpointEntry*, std::less<>> by_name;
  for (const auto& e : entries) by_name.emplace(e.name, &e);
  // Validate everything before the first change.
  std::vector<const Array*> values;
  values.reserve(var_list_.size());
  for (std::size_t i = 0; i < var_list_.size(); ++i) {
    const Variable& v = var_list_[i];
    const auto it = by_name.find(names_[i]);
    if (it == by_name.end()) {
      throw NotFoundError(str(prefix, ": variable '", names_[i], "' is not in the checkpoint (it ",
                              "holds ", entries.size(), " variables)"));
    }
    const Array& value = it->second->value;
    if (value.dtype() != v.dtype()) {
      throw InvalidArgumentError(str(prefix, ": '", names_[i], "' is ", value.dtype(),
                                     " in the file but ", v.dtype(), " in the model"));
    }
    if (!(value.shape() == v.shape())) {
      throw InvalidArgumentError(str(prefix, ": '", names_[i], "' is ", value.shape(),
                                     " in the file but ", v.shape(), " in the model"));
    }
    values.push_back(&value);
  }
  for (std::size_t i = 0; i < var_list_.size(); ++i) session.set_value(var_list_[i], *values[i]);
}

namespace {

// A file, or a directory standing for its latest checkpoint.
std::string resolve_checkpoint(const std::string& path, const char* what) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) return path;
  const auto latest = latest_checkpoint(path);
  if (!latest) {
    throw NotFoundError(str(what, " '", path, "': the directory has no checkpoint state file"));
  }
  return *latest;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::vector<std::pair<std::string, Shape>> list_variables(const std::string& path) {
  const std::string file = resolve_checkpoint(path, "list_variables");
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& entry : read_checkpoint(file)) out.emplace_back(entry.name, entry.value.shape());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

Array load_variable(const std::string& path, const std::string& name) {
  const std::string file = resolve_checkpoint(path, "load_variable");
  std::vector<CheckpointEntry> entries = read_checkpoint(file);
  for (auto& entry : entries) {
    if (entry.name == name) return std::move(entry.value);
  }
  std::sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
    return std::pair(edit_distance(a.name, name), a.name) <
           std::pair(edit_distance(b.name, name), b.name);
  });
  std::string closest;
  for (std::size_t i = 0; i < entries.size() && i < 3; ++i) {
    closest += str(i == 0 ? "" : ", ", "'", entries[i].name, "'");
  }
  throw NotFoundError(str("load_variable '", file, "': no variable '", name, "' (", entries.size(),
                          " variables; closest: ", closest.empty() ? "none" : closest, ")"));
}

}  // namespace ad
