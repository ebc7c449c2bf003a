// Loading the examples' data: the bundled digits CSV, or a directory holding MNIST's IDX files, so
// every example can be pointed at real MNIST with --data <dir>. Pixels are scaled to [0, 1].
#pragma once

#include <cstdint>
#include <string>

#include "data/dataset.h"

namespace examples {

struct ExampleData {
  ad::data::Dataset train;
  ad::data::Dataset test;
  std::int64_t image_side = 0;  // images are image_side x image_side (8 for digits, 28 for MNIST)
};

// Loads `path` (a digits-style CSV, gzipped or not, or a directory with MNIST's
// train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]), scales the pixels to [0, 1] and
// splits it with `seed`, holding out `test_fraction`; prints one line describing the result.
[[nodiscard]] ExampleData load_example_data(const std::string& path, double test_fraction,
                                            std::uint64_t seed);

}  // namespace examples
