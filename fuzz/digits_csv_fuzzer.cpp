// libFuzzer target for the CSV loaders (load_digits_csv and load_csv), plain or gzipped (the
// loader decides by the first bytes, so mutated gzip seeds reach the decompressor). The first byte
// picks the call; the rest is the file. Contract checked: each call either returns a consistent
// Dataset (features [N, D] Float32, N Int64 labels in [0, num_classes)) or throws an ad::Error.
#include <cstdint>
#include <string>

#include "data/loaders.h"
#include "fuzz/fuzz_util.h"

namespace {

// A CSV loader never returns an empty dataset ("the file has no rows" is an error).
void check(const ad::data::Dataset& d, std::int64_t num_features, int num_classes) {
  if (d.labels.size() < 1) fuzz::fail("a dataset without rows");
  fuzz::check_dataset(d, num_features, num_classes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string path = fuzz::write_file("data.csv", data + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        check(ad::data::load_digits_csv(path), 64, 10);
        break;
      case 1:
        check(ad::data::load_csv(path), -1, 10);
        break;
      default:
        check(ad::data::load_csv(path, {.num_features = 2, .num_classes = 3, .header = true}), 2,
              3);
        break;
    }
  } catch (const ad::Error&) {
    return 0;
  }
  return 0;
}
