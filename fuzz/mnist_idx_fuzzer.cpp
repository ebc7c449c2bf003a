// libFuzzer target for load_mnist_idx. The first two bytes (little-endian) give the length of the
// images file, taken from what follows; the rest is the labels file. Either may be gzipped.
// Contract checked: the call either returns a consistent Dataset (features [N, rows * cols]
// Float32 in 0..255, N Int64 labels in [0, 10)) or throws an ad::Error.
#include <algorithm>
#include <cstdint>
#include <string>

#include "data/loaders.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t images_size = std::min<std::size_t>(data[0] | (data[1] << 8U), size - 2);
  const std::string images = fuzz::write_file("images.idx", data + 2, images_size);
  const std::string labels =
      fuzz::write_file("labels.idx", data + 2 + images_size, size - 2 - images_size);
  try {
    const ad::data::Dataset d = ad::data::load_mnist_idx(images, labels);
    fuzz::check_dataset(d, -1, 10);
    for (float x : d.features.data<float>()) {
      if (!(x >= 0.f && x <= 255.f)) fuzz::fail("pixel " + std::to_string(x));
    }
  } catch (const ad::Error&) {
    return 0;
  }
  return 0;
}
