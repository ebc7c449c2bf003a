// check_path and open_regular_file: stat first, open with O_NONBLOCK, fstat again.
#include "autodiff/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "autodiff/error.h"

namespace ad::detail {

namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

[[noreturn]] void throw_not_regular(std::string_view op, const std::string& path, mode_t mode) {
  throw NotFoundError(str(op, " '", path, "': is ", file_type_name(mode), ", not a regular file"));
}

}  // namespace

void check_path(std::string_view op, const std::string& path) {
  const auto nul = path.find('\0');
  if (nul == std::string::npos) return;
  std::string shown;
  for (const char c : path) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
  throw ValueError(str(op, " '", shown, "': the path contains a NUL byte at offset ", nul,
                       " (the file system would see only the part before it)"));
}

int open_regular_file(std::string_view op, const std::string& path) {
  check_path(op, path);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return -1;
  if (!S_ISREG(info.st_mode)) throw_not_regular(op, path, info.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    throw_not_regular(op, path, info.st_mode);
  }
  // Reads of a regular file never block, but callers get the descriptor in its ordinary mode.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace ad::detail
