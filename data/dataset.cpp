// Seeded shuffles, splits, scaling and batching of ad::data::Dataset.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>

namespace ad::data {
namespace {

// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and fully specified, unlike the
// distributions of <random>, whose output differs between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
  }
  // Uniform in [0, bound) without modulo bias: reject the 2^64 mod bound lowest values.
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  std::uint64_t state_;
};

void check_dataset(const Dataset& d, std::string_view op) {
  if ((d.features.dtype() != DType::Float32 && d.features.dtype() != DType::UInt8) ||
      d.features.rank() != 2 || d.labels.dtype() != DType::Int64 || d.labels.rank() != 1 ||
      d.features.shape()[0] != d.labels.shape()[0]) {
    throw ValueError(
        str(op, ": a dataset needs float32 features [N, D] (or uint8) and int64 labels [N], got ",
            dtype_name(d.features.dtype()), d.features.shape(), " and ",
            dtype_name(d.labels.dtype()), d.labels.shape()));
  }
}

// The feature arithmetic (scaling, standardizing) is in float32; uint8 features are cast in the
// graph instead (ad::cast(x, DType::Float32) * (1.0 / 255)).
void require_float_features(const Dataset& d, std::string_view op) {
  check_dataset(d, op);
  if (d.features.dtype() != DType::Float32) {
    throw ValueError(
        str(op, ": the features are ", d.features.dtype(),
            "; it needs float32 features (load them as float32, or cast in the graph)"));
  }
}

}  // namespace

Dataset Dataset::rows(std::span<const std::int64_t> indices) const {
  check_dataset(*this, "Dataset::rows");
  const std::int64_t n = size();
  const std::int64_t d = num_features();
  const auto count = static_cast<std::int64_t>(indices.size());
  Dataset out;
  out.num_classes = num_classes;
  out.features = Array::uninitialized(features.dtype(), {count, d});
  out.labels = Array::uninitialized(DType::Int64, {count});
  const std::size_t row_bytes = static_cast<std::size_t>(d) * dtype_size(features.dtype());
  const auto* src_x = static_cast<const std::byte*>(features.raw_data());
  auto* dst_x = static_cast<std::byte*>(out.features.raw_mutable_data());
  const auto src_y = labels.data<std::int64_t>();
  auto dst_y = out.labels.mutable_data<std::int64_t>();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t row = indices[static_cast<std::size_t>(i)];
    if (row < 0 || row >= n) {
      throw OutOfRangeError(
          str("Dataset::rows: index ", row, " at position ", i, " is outside [0, ", n, ")"));
    }
    if (row_bytes > 0) {
      std::memcpy(dst_x + static_cast<std::size_t>(i) * row_bytes,
                  src_x + static_cast<std::size_t>(row) * row_bytes, row_bytes);
    }
    dst_y[static_cast<std::size_t>(i)] = src_y[static_cast<std::size_t>(row)];
  }
  return out;
}

std::vector<std::int64_t> Dataset::class_counts() const {
  check_dataset(*this, "Dataset::class_counts");
  std::vector<std::int64_t> counts(static_cast<std::size_t>(std::max(num_classes, 0)), 0);
  for (const std::int64_t label : labels.data<std::int64_t>()) {
    if (label < 0 || label >= num_classes) {
      throw OutOfRangeError(str("Dataset::class_counts: label ", label, " is outside [0, ",
                                num_classes, ") (num_classes is ", num_classes, ")"));
    }
    ++counts[static_cast<std::size_t>(label)];
  }
  return counts;
}

std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  SplitMix64 rng(seed);
  for (std::size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[rng.below(i)]);
  }
  return order;
}

Dataset shuffled(const Dataset& dataset, std::uint64_t seed) {
  const auto order = permutation(dataset.size(), seed);
  return dataset.rows(order);
}

Split train_test_split(const Dataset& dataset, double test_fraction, std::uint64_t seed) {
  const std::int64_t n = dataset.size();
  // The fraction is checked before the cast: a NaN or out-of-range double converted to int64 is
  // undefined behaviour.
  const bool in_range = test_fraction > 0.0 && test_fraction < 1.0;
  const auto num_test =
      in_range ? static_cast<std::int64_t>(std::ceil(test_fraction * static_cast<double>(n))) : 0;
  if (!in_range || num_test >= n) {
    throw ValueError(str("train_test_split: test_fraction ", test_fraction, " of ", n,
                         " examples must lie in (0, 1) and leave both parts non-empty"));
  }
  const auto order = permutation(n, seed);
  const std::span<const std::int64_t> all(order);
  return {.train = dataset.rows(all.subspan(static_cast<std::size_t>(num_test))),
          .test = dataset.rows(all.first(static_cast<std::size_t>(num_test)))};
}

Dataset scale_features(const Dataset& dataset, double factor) {
  require_float_features(dataset, "scale_features");
  Dataset out = dataset;
  const auto f = static_cast<float>(factor);
  auto x = out.features.mutable_data<float>();
  for (float& value : x) value *= f;
  return out;
}

Standardizer Standardizer::fit(const Dataset& dataset) {
  require_float_features(dataset, "Standardizer::fit");
  const std::int64_t n = dataset.size();
  const auto d = static_cast<std::size_t>(dataset.num_features());
  if (n == 0) throw ValueError("Standardizer::fit: the dataset has no examples");
  std::vector<double> mean(d, 0.0);
  std::vector<double> m2(d, 0.0);
  const auto x = dataset.features.data<float>();
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = x.data() + static_cast<std::size_t>(r) * d;
    for (std::size_t j = 0; j < d; ++j) mean[j] += row[j];
  }
  for (double& m : mean) m /= static_cast<double>(n);
  // Second pass on deviations: no cancellation for features with a large mean.
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = x.data() + static_cast<std::size_t>(r) * d;
    for (std::size_t j = 0; j < d; ++j) {
      const double dev = row[j] - mean[j];
      m2[j] += dev * dev;
    }
  }
  std::vector<double> stddev(d);
  for (std::size_t j = 0; j < d; ++j) stddev[j] = std::sqrt(m2[j] / static_cast<double>(n));
  Standardizer s;
  s.mean_ = Array::vector(mean);
  s.stddev_ = Array::vector(stddev);
  return s;
}

Dataset Standardizer::transform(const Dataset& dataset) const {
  require_float_features(dataset, "Standardizer::transform");
  const auto d = static_cast<std::size_t>(dataset.num_features());
  if (static_cast<std::int64_t>(d) != mean_.size()) {
    throw ValueError(str("Standardizer::transform: the dataset has ", d,
                         " features but the standardizer was fitted on ", mean_.size()));
  }
  std::vector<float> shift(d);
  std::vector<float> scale(d);
  for (std::size_t j = 0; j < d; ++j) {
    const double s = stddev_.data<double>()[j];
    shift[j] = static_cast<float>(mean_.data<double>()[j]);
    scale[j] = static_cast<float>(s > 0.0 ? 1.0 / s : 1.0);
  }
  Dataset out = dataset;
  auto x = out.features.mutable_data<float>();
  const auto n = static_cast<std::size_t>(dataset.size());
  for (std::size_t r = 0; r < n; ++r) {
    float* row = x.data() + r * d;
    for (std::size_t j = 0; j < d; ++j) row[j] = (row[j] - shift[j]) * scale[j];
  }
  return out;
}

BatchIterator::BatchIterator(Dataset dataset, BatchOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  check_dataset(dataset_, "BatchIterator");
  if (options_.batch_size < 1) {
    throw ValueError(str("BatchIterator: batch_size is ", options_.batch_size, ", must be >= 1"));
  }
  if (options_.num_shards < 1 || options_.shard_index < 0 ||
      options_.shard_index >= options_.num_shards) {
    throw ValueError(str("BatchIterator: shard_index ", options_.shard_index,
                         " is outside [0, num_shards) with num_shards ", options_.num_shards));
  }
  if (num_batches() == 0) {
    throw ValueError(
        str("BatchIterator: ", dataset_.size(), " examples make no batch of ", options_.batch_size,
            (options_.drop_last ? "; use a smaller batch_size or drop_last = false" : "")));
  }
}

std::int64_t BatchIterator::num_batches() const {
  const std::int64_t n = dataset_.size();
  // One global batch is batch_size examples per shard; a product past INT64_MAX is taken as
  // INT64_MAX (any batch at least as large as the data set gives one batch). n / b rounded up
  // without forming n + b - 1, which overflows for b near INT64_MAX.
  const std::int64_t b =
      options_.batch_size > std::numeric_limits<std::int64_t>::max() / options_.num_shards
          ? std::numeric_limits<std::int64_t>::max()
          : options_.batch_size * options_.num_shards;
  return options_.drop_last ? n / b : n / b + (n % b != 0 ? 1 : 0);
}

std::vector<std::int64_t> BatchIterator::order(std::int64_t epoch) const {
  if (!options_.shuffle) {
    std::vector<std::int64_t> stored(static_cast<std::size_t>(dataset_.size()));
    std::iota(stored.begin(), stored.end(), std::int64_t{0});
    return stored;
  }
  // epoch + 1 in unsigned arithmetic: the same value, and no overflow for epoch = INT64_MAX.
  SplitMix64 mix(options_.seed ^ (0xd1b54a32d192ed03ULL * (static_cast<std::uint64_t>(epoch) + 1)));
  return permutation(dataset_.size(), mix.next());
}

BatchIterator::Epoch BatchIterator::epoch(std::int64_t epoch) const {
  return {dataset_,     options_.batch_size, num_batches(),
          order(epoch), options_.num_shards, options_.shard_index};
}

Batch BatchIterator::batch(std::int64_t epoch, std::int64_t index) const {
  return this->epoch(epoch)[index];
}

Batch BatchIterator::Epoch::operator[](std::int64_t index) const {
  if (index < 0 || index >= num_batches_) {
    throw OutOfRangeError(
        str("BatchIterator: batch ", index, " is outside [0, ", num_batches_, ")"));
  }
  // index < num_batches_ keeps the global batch's start below N (or at 0 for one batch); the
  // shard's offset and its count are clamped to what is left, so no product or sum that could
  // overflow for a batch_size near INT64_MAX is formed.
  const auto n = static_cast<std::int64_t>(order_.size());
  const std::int64_t start = index == 0 ? 0 : index * batch_size_ * num_shards_;
  const std::int64_t left = n - start;
  const std::int64_t offset =
      shard_index_ > 0 && batch_size_ > left / shard_index_ ? left : shard_index_ * batch_size_;
  const std::int64_t first = start + std::min(offset, left);
  const std::int64_t last = first + std::min(batch_size_, n - first);
  const std::span<const std::int64_t> rows(order_.data() + first,
                                           static_cast<std::size_t>(last - first));
  Dataset part = dataset_.rows(rows);
  return {.features = std::move(part.features), .labels = std::move(part.labels)};
}

BatchIterator::Epoch::iterator::iterator(const Epoch* epoch, std::int64_t index)
    : epoch_(epoch), index_(index) {
  load();
}

BatchIterator::Epoch::iterator& BatchIterator::Epoch::iterator::operator++() {
  ++index_;
  load();
  return *this;
}

void BatchIterator::Epoch::iterator::load() {
  if (epoch_ != nullptr && index_ < epoch_->size()) current_ = (*epoch_)[index_];
}

}  // namespace ad::data
