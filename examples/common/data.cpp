// The examples' data: digits CSV or MNIST IDX, scaled and split.
#include "examples/common/data.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "autodiff/error.h"
#include "data/loaders.h"

namespace examples {
namespace {

namespace fs = std::filesystem;

// dir/name, or dir/name.gz when only the compressed file exists.
std::string find_idx(const fs::path& dir, const std::string& name) {
  if (fs::exists(dir / name)) return (dir / name).string();
  if (fs::exists(dir / (name + ".gz"))) return (dir / (name + ".gz")).string();
  throw ad::NotFoundError(ad::str("--data '", dir.string(), "': a directory, but without ", name,
                                  "[.gz]; give MNIST's IDX files or a digits CSV file"));
}

}  // namespace

ExampleData load_example_data(const std::string& path, double test_fraction, std::uint64_t seed) {
  ad::data::Dataset all;
  if (fs::is_directory(path)) {
    const std::string images = find_idx(path, "train-images-idx3-ubyte");
    const std::string labels = find_idx(path, "train-labels-idx1-ubyte");
    all = ad::data::load_mnist_idx(images, labels);
    all = ad::data::scale_features(all, 1.0 / 255);
  } else {
    all = ad::data::scale_features(ad::data::load_digits_csv(path), 1.0 / 16);
  }
  const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(all.num_features())));
  auto [train, test] = ad::data::train_test_split(all, test_fraction, seed);
  std::printf("data: %s: %lld training and %lld held-out examples of %lld features, %d classes\n",
              fs::path(path).filename().c_str(), static_cast<long long>(train.size()),
              static_cast<long long>(test.size()), static_cast<long long>(all.num_features()),
              all.num_classes);
  return {std::move(train), std::move(test), side * side == all.num_features() ? side : 0};
}

}  // namespace examples
