// ad::data::Dataset (features and integer class labels held as Arrays) and what training loops do
// with one: seeded shuffles, a train/test split, feature scaling and a batch iterator.
//
// Every random choice comes from an explicit seed through a generator written here, so the same
// seed gives the same order on every platform and standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <utility>
#include <vector>

#include "gradtape/autodiff/array.h"

namespace ad::data {

// N labelled examples: features Float32 (or UInt8, raw pixels) [N, D], labels Int64 [N] with values
// in [0, num_classes). scale_features and Standardizer need Float32 features.
struct Dataset {
  Array features{DType::Float32, Shape{0, 0}};
  Array labels{DType::Int64, Shape{0}};
  int num_classes = 0;

  // Number of examples N.
  [[nodiscard]] std::int64_t size() const { return labels.size(); }
  // Number of features per example D.
  [[nodiscard]] std::int64_t num_features() const { return features.shape()[1]; }
  // A new dataset holding the given rows, in that order (rows may repeat); OutOfRangeError for a
  // row outside [0, N).
  [[nodiscard]] Dataset rows(std::span<const std::int64_t> indices) const;
  // How many examples each class has: a vector of num_classes counts.
  [[nodiscard]] std::vector<std::int64_t> class_counts() const;
};

// A random permutation of 0..n-1 fixed by `seed` (Fisher-Yates on a SplitMix64 stream).
[[nodiscard]] std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed);

// The dataset's rows in the order permutation(size(), seed).
[[nodiscard]] Dataset shuffled(const Dataset& dataset, std::uint64_t seed);

struct Split {
  Dataset train;
  Dataset test;
};

// Shuffles with `seed`, then puts ceil(test_fraction * N) examples in `test` and the rest in
// `train` (scikit-learn's train_test_split rule). test_fraction must lie in (0, 1) and leave both
// parts non-empty; ValueError otherwise.
[[nodiscard]] Split train_test_split(const Dataset& dataset, double test_fraction,
                                     std::uint64_t seed);

// The dataset with every feature multiplied by `factor` (e.g. 1/16 maps digits pixels to [0, 1]).
[[nodiscard]] Dataset scale_features(const Dataset& dataset, double factor);

// Per-feature standardization: (x - mean) / stddev, with mean and stddev fitted on one dataset
// (the training split) and applied to others. Constant features (stddev 0) are only centred.
class Standardizer {
 public:
  // Fits mean and (population) stddev per feature, accumulated in double.
  [[nodiscard]] static Standardizer fit(const Dataset& dataset);
  // The dataset with standardized features; ValueError when its feature count differs.
  [[nodiscard]] Dataset transform(const Dataset& dataset) const;
  // Float64 [D] arrays.
  [[nodiscard]] const Array& mean() const { return mean_; }
  [[nodiscard]] const Array& stddev() const { return stddev_; }

 private:
  Array mean_;
  Array stddev_;
};

struct Batch {
  Array features;  // [B, D], the dataset's feature dtype
  Array labels;    // Int64 [B]
};

struct BatchOptions {
  std::int64_t batch_size = 32;
  // Drop the last, smaller batch of an epoch (keeps every batch the same shape).
  bool drop_last = false;
  // Visit the examples in a new random order each epoch; false keeps the stored order.
  bool shuffle = true;
  // The order of epoch e is permutation(N, f(seed, e)): it depends only on the seed and the epoch.
  std::uint64_t seed = 0;
  // Data-parallel sharding: each epoch's order (the same on every shard) is cut into global
  // batches of batch_size * num_shards examples, and shard k takes the k-th run of batch_size
  // examples of each. Shards are disjoint, their union is the epoch, and every shard has the same
  // num_batches(); in the last global batch a shard may get fewer examples or none (drop_last
  // drops that batch instead). Use num_shards = distributed::size(), shard_index = rank().
  std::int64_t num_shards = 1;
  std::int64_t shard_index = 0;
};

// Cuts a dataset into minibatches, in a new seeded order every epoch:
//   ad::data::BatchIterator batches(train, {.batch_size = 64, .seed = 1});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const ad::data::Batch& batch : batches.epoch(epoch)) { ... }
// Each Batch owns fresh Arrays, so it can be fed to a Session and kept.
class BatchIterator {
 public:
  // ValueError when batch_size < 1, when drop_last leaves no batch at all, or when the shard
  // options are out of range (num_shards < 1, shard_index outside [0, num_shards)).
  explicit BatchIterator(Dataset dataset, BatchOptions options = {});

  // Batches per epoch (the same on every shard).
  [[nodiscard]] std::int64_t num_batches() const;
  // Batch `index` (0 <= index < num_batches()) of epoch `epoch`.
  [[nodiscard]] Batch batch(std::int64_t epoch, std::int64_t index) const;
  [[nodiscard]] const Dataset& dataset() const { return dataset_; }

  class Epoch;
  // The batches of one epoch, as a range for a range-based for loop.
  [[nodiscard]] Epoch epoch(std::int64_t epoch) const;

 private:
  [[nodiscard]] std::vector<std::int64_t> order(std::int64_t epoch) const;

  Dataset dataset_;
  BatchOptions options_;
};

class BatchIterator::Epoch {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    iterator() = default;
    iterator(const Epoch* epoch, std::int64_t index);
    reference operator*() const { return current_; }
    pointer operator->() const { return &current_; }
    iterator& operator++();
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.index_ == b.index_; }

   private:
    void load();
    const Epoch* epoch_ = nullptr;
    std::int64_t index_ = 0;
    Batch current_{};
  };

  // Batch i holds order[i * batch_size * num_shards + shard_index * batch_size, ...) (batch_size
  // examples at most, fewer at the end of the order).
  Epoch(Dataset dataset, std::int64_t batch_size, std::int64_t num_batches,
        std::vector<std::int64_t> order, std::int64_t num_shards = 1, std::int64_t shard_index = 0)
      : dataset_(std::move(dataset)),
        batch_size_(batch_size),
        num_batches_(num_batches),
        order_(std::move(order)),
        num_shards_(num_shards),
        shard_index_(shard_index) {}
  [[nodiscard]] iterator begin() const { return {this, 0}; }
  [[nodiscard]] iterator end() const { return {this, num_batches_}; }
  [[nodiscard]] std::int64_t size() const { return num_batches_; }
  // Batch `index` of this epoch.
  [[nodiscard]] Batch operator[](std::int64_t index) const;

 private:
  // A copy sharing the data's storage, so an Epoch outlives the BatchIterator that made it.
  Dataset dataset_;
  std::int64_t batch_size_;
  std::int64_t num_batches_;
  std::vector<std::int64_t> order_;
  std::int64_t num_shards_ = 1;
  std::int64_t shard_index_ = 0;
};

}  // namespace ad::data
