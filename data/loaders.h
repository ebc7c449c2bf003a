// Loaders for labelled data sets: CSV files (the bundled digits data) and MNIST's IDX files.
// Both read plain or gzip-compressed files (recognized by their first bytes, not their names).
//
// A bad file fails with a one-line message naming the loader, the file and the line or byte offset:
//   NotFoundError         the file is missing or cannot be opened, or is not a regular file (a
//                         directory, a FIFO, a device: refused before anything could block)
//   ValueError            the path contains a NUL byte
//   DataLossError         truncated or damaged data (a gzip file whose CRC or length footer does
//                         not match is refused before any of it is parsed), wrong magic number,
//                         wrong field count, a field that is not a number
//   InvalidArgumentError  well-formed data with a wrong value: a label outside [0, num_classes),
//                         image and label files of different lengths
#pragma once

#include <cstdint>
#include <string>

#include "gradtape/data/dataset.h"

namespace ad::data {

struct CsvOptions {
  // Features per row; the label follows them as the last field. -1: taken from the first row.
  std::int64_t num_features = -1;
  // Labels must lie in [0, num_classes).
  int num_classes = 10;
  // Skip the first line (column names).
  bool header = false;
};

// Reads rows of comma-separated numbers, features then an integer label, one example per line.
[[nodiscard]] Dataset load_csv(const std::string& path, const CsvOptions& options = {});

// Reads the bundled digits file (examples/data/digits.csv.gz: 1797 rows of 64 pixels in 0..16,
// then the label 0..9; UCI Optical Recognition of Handwritten Digits). Features stay in 0..16;
// scale_features(d, 1.0 / 16) maps them to [0, 1].
[[nodiscard]] Dataset load_digits_csv(const std::string& path);

struct IdxOptions {
  // Labels must lie in [0, num_classes).
  int num_classes = 10;
  // Float32 (pixels 0..255 as floats) or UInt8 (the file's bytes as they are: a quarter of the
  // memory; feed them to a UInt8 placeholder and cast in the graph, as TF1 input pipelines do).
  DType features_dtype = DType::Float32;
};

// Reads an MNIST-style pair of IDX files (optionally gzipped): images with magic 0x00000803 and
// dims [N, rows, cols] of unsigned bytes, labels with magic 0x00000801 and dims [N]. Features are
// [N, rows * cols] in 0..255, Float32 by default (scale_features(d, 1.0 / 255) maps them to
// [0, 1]); ValueError for a features_dtype other than Float32 and UInt8.
[[nodiscard]] Dataset load_mnist_idx(const std::string& images_path, const std::string& labels_path,
                                     const IdxOptions& options);
[[nodiscard]] Dataset load_mnist_idx(const std::string& images_path, const std::string& labels_path,
                                     int num_classes = 10);

}  // namespace ad::data
