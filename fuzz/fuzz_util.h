// Shared by the fuzz targets: a private temporary directory for the bytes under test, a failure
// that libFuzzer reports as a crash with the offending input saved, and the loaders' contract.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "data/dataset.h"

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

// Aborts unless `d` is what a loader promises: Float32 features [N, D] (D == num_features unless
// that is -1), N Int64 labels in [0, num_classes), and num_classes as asked. The dtypes are checked
// first: reading elements of the wrong type would throw an ad::Error, which the targets accept.
inline void check_dataset(const ad::data::Dataset& d, std::int64_t num_features, int num_classes) {
  const std::int64_t n = d.labels.size();
  if (d.features.dtype() != ad::DType::Float32 || d.labels.dtype() != ad::DType::Int64 ||
      d.features.rank() != 2 || d.labels.rank() != 1 || d.features.shape()[0] != n ||
      d.num_classes != num_classes) {
    fail("inconsistent dataset " + d.features.shape().to_string() + " features, " +
         d.labels.shape().to_string() + " labels");
  }
  if (num_features >= 0 && d.features.shape()[1] != num_features) {
    fail("wrong feature count " + d.features.shape().to_string());
  }
  for (const std::int64_t label : d.labels.data<std::int64_t>()) {
    if (label < 0 || label >= num_classes) fail("label " + std::to_string(label));
  }
}

}  // namespace fuzz
