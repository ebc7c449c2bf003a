// Shared by the fuzz targets: a private temporary directory for the bytes under test, and a
// failure that libFuzzer reports as a crash with the offending input saved.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace fuzz {

// A directory of this process (libFuzzer may run several jobs side by side), under TMPDIR.
inline const std::string& work_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/gradtape-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return pattern;
  }();
  // Removed at a normal exit (registered after `dir` is built, so it runs before dir's
  // destructor); after a crash it is kept beside the saved input.
  static const bool cleanup = std::atexit([] { std::filesystem::remove_all(dir); }) == 0;
  (void)cleanup;
  return dir;
}

// Writes `bytes` to `name` in work_dir() and returns the path.
inline std::string write_file(std::string_view name, const std::uint8_t* data, std::size_t size) {
  const std::string path = work_dir() + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Aborts with a message: libFuzzer treats it as a crash and saves the input.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz: contract violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace fuzz
