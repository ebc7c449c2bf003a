// Opening files for reading without the two traps of a plain open(): a path with an embedded NUL
// byte (c_str() would silently cut it) and a path that is not a regular file (open() of a FIFO with
// no writer blocks forever; a directory or /dev/zero never ends). Shared by the Saver and the data
// loaders.
#pragma once

#include <string>
#include <string_view>

namespace ad::detail {

// Throws ValueError "<op> '<path, NUL shown as \0>': the path contains a NUL byte at offset <k>"
// when `path` has one.
void check_path(std::string_view op, const std::string& path);

// Opens `path` read-only (O_CLOEXEC) when it names a regular file, and never blocks: the type is
// checked with stat() before opening, and again with fstat() on the descriptor, which is opened
// with O_NONBLOCK (a FIFO swapped in between then fails instead of waiting for a writer). Returns
// the descriptor (the caller closes it), or -1 with errno set when stat() or open() fails (a
// missing file, no permission), so each caller keeps its own error mapping. Throws ValueError for
// a NUL byte (check_path) and NotFoundError "<op> '<path>': is a FIFO, not a regular file" (or a
// directory, a character device, ...) for anything but a regular file.
[[nodiscard]] int open_regular_file(std::string_view op, const std::string& path);

}  // namespace ad::detail
