// File primitives the Saver and the checkpoint state file share (internal): atomic writes through
// a locked temporary file, and the removal of temporary files that killed saves left behind.
#pragma once

#include <string>
#include <string_view>

namespace ad::detail {

// Writes `header` + `payload` to a fresh temporary file "<path>.tmp.<hex>" next to `path`, holding
// an exclusive flock on it, fsyncs it and renames it over `path`. On any failure the temporary file
// is removed and `path` is untouched. `what` starts the error messages ("save 'x.ckpt'").
void write_file_atomically(const std::string& path, std::string_view header,
                           std::string_view payload, const std::string& what);

// Removes every "<path>.tmp.<hex>" regular file that no live save holds locked; with `any_step`,
// those of "<path>-<step>" for any step instead (what a managed save of prefix `path` leaves).
void remove_stray_temporaries(const std::string& path, bool any_step = false);

// Calls saver_fault_hook when it is set.
void saver_fault(std::string_view stage);

// "dir" of "dir/file", "." without a slash.
[[nodiscard]] std::string directory_of(const std::string& path);

}  // namespace ad::detail
