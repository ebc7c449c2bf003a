// Dataset: seeded permutations (deterministic and unbiased), row selection, train/test split,
// feature scaling and standardization, and the batch iterator.
#include "data/dataset.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

// n examples whose feature 0 is the row index, feature 1 is 10 * index, label index % 3.
ad::data::Dataset indexed(std::int64_t n) {
  std::vector<float> x;
  std::vector<std::int64_t> y;
  for (std::int64_t i = 0; i < n; ++i) {
    x.push_back(static_cast<float>(i));
    x.push_back(static_cast<float>(10 * i));
    y.push_back(i % 3);
  }
  return {
      .features = ad::Array::from(x, {n, 2}), .labels = ad::Array::from(y, {n}), .num_classes = 3};
}

std::vector<std::int64_t> row_ids(const ad::Array& features) {
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < features.shape()[0]; ++i) {
    ids.push_back(static_cast<std::int64_t>(features.at({i, 0})));
  }
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dataset_test)

BOOST_AUTO_TEST_CASE(permutation_is_deterministic_per_seed) {
  const auto a = ad::data::permutation(100, 7);
  const auto b = ad::data::permutation(100, 7);
  const auto c = ad::data::permutation(100, 8);
  BOOST_TEST(a == b, boost::test_tools::per_element());
  BOOST_TEST(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 100; ++i) BOOST_TEST(sorted[static_cast<std::size_t>(i)] == i);
  BOOST_TEST(ad::data::permutation(0, 1).empty());
}

BOOST_AUTO_TEST_CASE(permutation_draws_every_order_equally_often) {
  // 24000 seeds over the 24 orders of 4 elements: each count is Binomial(24000, 1/24), mean 1000,
  // sd 31; a biased shuffle (e.g. swapping with any position) misses by far more than 5 sd.
  std::map<std::vector<std::int64_t>, int> counts;
  for (std::uint64_t seed = 0; seed < 24000; ++seed) ++counts[ad::data::permutation(4, seed)];
  BOOST_TEST(counts.size() == 24u);
  for (const auto& [order, count] : counts) BOOST_TEST(std::abs(count - 1000) < 156);
}

BOOST_AUTO_TEST_CASE(rows_gathers_in_the_given_order) {
  const auto d = indexed(5);
  const std::vector<std::int64_t> pick{4, 0, 4};
  const auto r = d.rows(pick);
  BOOST_TEST(r.features.shape() == ad::Shape({3, 2}));
  BOOST_TEST(row_ids(r.features) == pick, boost::test_tools::per_element());
  BOOST_TEST(r.features.at({0, 1}) == 40.0);
  BOOST_TEST(r.labels.at({0}) == 1.0);
  BOOST_TEST(r.num_classes == 3);
  const std::vector<std::int64_t> bad{1, 5};
  BOOST_CHECK_EXCEPTION((void)d.rows(bad), ad::OutOfRangeError,
                        (MessageHas{{"Dataset::rows", "index 5 at position 1", "[0, 5)"}}));
}

BOOST_AUTO_TEST_CASE(malformed_dataset_is_rejected) {
  ad::data::Dataset d{.features = ad::Array(ad::DType::Float32, {3, 2}),
                      .labels = ad::Array(ad::DType::Int64, {4}),
                      .num_classes = 2};
  BOOST_CHECK_EXCEPTION((void)ad::data::shuffled(d, 1), ad::ValueError,
                        (MessageHas{{"float32 features [N, D]", "float32[3, 2]", "int64[4]"}}));
}

BOOST_AUTO_TEST_CASE(train_test_split_takes_the_ceiling_and_covers_every_row_once) {
  const auto d = indexed(1797);
  const auto split = ad::data::train_test_split(d, 0.2, 42);
  BOOST_TEST(split.test.size() == 360);  // ceil(0.2 * 1797) = ceil(359.4)
  BOOST_TEST(split.train.size() == 1437);
  std::set<std::int64_t> seen;
  for (const auto id : row_ids(split.train.features)) seen.insert(id);
  for (const auto id : row_ids(split.test.features)) seen.insert(id);
  BOOST_TEST(seen.size() == 1797u);
  // Labels travel with their rows.
  for (std::int64_t i = 0; i < split.test.size(); ++i) {
    BOOST_TEST(split.test.labels.at({i}) ==
               static_cast<double>(static_cast<std::int64_t>(split.test.features.at({i, 0})) % 3));
  }
  const auto again = ad::data::train_test_split(d, 0.2, 42);
  BOOST_TEST(row_ids(again.test.features) == row_ids(split.test.features),
             boost::test_tools::per_element());
  const auto other = ad::data::train_test_split(d, 0.2, 43);
  BOOST_TEST(row_ids(other.test.features) != row_ids(split.test.features));
}

BOOST_AUTO_TEST_CASE(train_test_split_rejects_fractions_that_empty_a_part) {
  const auto d = indexed(10);
  for (const double f : {0.0, 1.0, -0.5, 0.95}) {
    BOOST_CHECK_EXCEPTION((void)ad::data::train_test_split(d, f, 1), ad::ValueError,
                          (MessageHas{{"train_test_split", "of 10 examples", "non-empty"}}));
  }
}

BOOST_AUTO_TEST_CASE(scale_features_multiplies_and_leaves_the_input_alone) {
  const auto d = indexed(4);
  const auto s = ad::data::scale_features(d, 1.0 / 16);
  BOOST_TEST(s.features.at({3, 1}) == 30.0 / 16);
  BOOST_TEST(d.features.at({3, 1}) == 30.0);
}

BOOST_AUTO_TEST_CASE(standardizer_uses_the_fitted_statistics) {
  // Columns: 1, 2, 3, 4 (mean 2.5, population sd sqrt(1.25)) and a constant 7.
  const ad::data::Dataset train{
      .features = ad::Array::from<float>({1, 7, 2, 7, 3, 7, 4, 7}, {4, 2}),
      .labels = ad::Array::from<std::int64_t>({0, 1, 0, 1}, {4}),
      .num_classes = 2};
  const auto standardizer = ad::data::Standardizer::fit(train);
  BOOST_TEST(standardizer.mean().at({0}) == 2.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(standardizer.stddev().at({0}) == std::sqrt(1.25), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(standardizer.stddev().at({1}) == 0.0);
  const ad::data::Dataset test{.features = ad::Array::from<float>({5, 9}, {1, 2}),
                               .labels = ad::Array::from<std::int64_t>({1}, {1}),
                               .num_classes = 2};
  const auto t = standardizer.transform(test);
  BOOST_TEST(t.features.at({0, 0}) == 2.5 / std::sqrt(1.25), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(t.features.at({0, 1}) == 2.0);  // constant column: centred only
  const auto wrong = ad::data::Dataset{.features = ad::Array(ad::DType::Float32, {1, 3}),
                                       .labels = ad::Array(ad::DType::Int64, {1}),
                                       .num_classes = 2};
  BOOST_CHECK_EXCEPTION((void)standardizer.transform(wrong), ad::ValueError,
                        (MessageHas{{"has 3 features", "fitted on 2"}}));
}

BOOST_AUTO_TEST_CASE(each_epoch_visits_every_example_once_in_a_new_order) {
  const ad::data::BatchIterator batches(indexed(10), {.batch_size = 4, .seed = 3});
  BOOST_TEST(batches.num_batches() == 3);
  std::vector<std::vector<std::int64_t>> orders;
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::int64_t> order;
    std::vector<std::int64_t> sizes;
    for (const auto& batch : batches.epoch(epoch)) {
      sizes.push_back(batch.labels.size());
      for (const auto id : row_ids(batch.features)) {
        order.push_back(id);
        BOOST_TEST(batch.labels.at({static_cast<std::int64_t>(order.size() - 1) % 4}) ==
                   static_cast<double>(id % 3));
      }
    }
    BOOST_TEST(sizes == (std::vector<std::int64_t>{4, 4, 2}), boost::test_tools::per_element());
    auto sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (std::int64_t i = 0; i < 10; ++i) BOOST_TEST(sorted[static_cast<std::size_t>(i)] == i);
    orders.push_back(order);
  }
  BOOST_TEST(orders[0] != orders[1]);
  BOOST_TEST(orders[1] != orders[2]);
  // The order depends only on (seed, epoch): a second iterator and random access agree.
  const ad::data::BatchIterator same(indexed(10), {.batch_size = 4, .seed = 3});
  BOOST_TEST(row_ids(same.batch(1, 2).features) ==
                 std::vector<std::int64_t>(orders[1].begin() + 8, orders[1].end()),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(drop_last_and_stored_order) {
  const ad::data::BatchIterator dropped(indexed(10),
                                        {.batch_size = 4, .drop_last = true, .shuffle = false});
  BOOST_TEST(dropped.num_batches() == 2);
  std::vector<std::int64_t> order;
  for (const auto& batch : dropped.epoch(5)) {
    for (const auto id : row_ids(batch.features)) order.push_back(id);
  }
  BOOST_TEST(order == (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}),
             boost::test_tools::per_element());
  BOOST_CHECK_EXCEPTION((void)dropped.batch(0, 2), ad::OutOfRangeError,
                        (MessageHas{{"batch 2 is outside [0, 2)"}}));
}

BOOST_AUTO_TEST_CASE(an_epoch_outlives_its_iterator) {
  const auto epoch =
      ad::data::BatchIterator(indexed(5), {.batch_size = 2, .shuffle = false}).epoch(0);
  std::vector<std::int64_t> order;
  for (const auto& batch : epoch) {
    for (const auto id : row_ids(batch.features)) order.push_back(id);
  }
  BOOST_TEST(order == (std::vector<std::int64_t>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(batch_options_that_make_no_batch_are_rejected) {
  BOOST_CHECK_EXCEPTION(ad::data::BatchIterator(indexed(3), {.batch_size = 0}), ad::ValueError,
                        (MessageHas{{"batch_size is 0"}}));
  BOOST_CHECK_EXCEPTION(ad::data::BatchIterator(indexed(3), {.batch_size = 4, .drop_last = true}),
                        ad::ValueError,
                        (MessageHas{{"3 examples make no batch of 4", "drop_last = false"}}));
}

BOOST_AUTO_TEST_CASE(shards_are_disjoint_runs_of_the_unsharded_batches) {
  // 13 examples, 3 shards of batch 2: global batches of 6; the last global batch (1 example)
  // leaves shard 0 one example and shards 1 and 2 none. Concatenating the shards' batch i in shard
  // order gives batch i of one iterator with batch 6 and the same seed.
  const ad::data::BatchIterator whole(indexed(13), {.batch_size = 6, .seed = 9});
  std::vector<std::int64_t> seen;
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    for (std::int64_t i = 0; i < whole.num_batches(); ++i) {
      std::vector<std::int64_t> joined;
      std::vector<std::int64_t> sizes;
      for (std::int64_t shard = 0; shard < 3; ++shard) {
        const ad::data::BatchIterator part(
            indexed(13), {.batch_size = 2, .seed = 9, .num_shards = 3, .shard_index = shard});
        BOOST_TEST(part.num_batches() == 3);
        const auto ids = row_ids(part.batch(epoch, i).features);
        sizes.push_back(static_cast<std::int64_t>(ids.size()));
        joined.insert(joined.end(), ids.begin(), ids.end());
      }
      BOOST_TEST(joined == row_ids(whole.batch(epoch, i).features),
                 boost::test_tools::per_element());
      if (i == 2) {
        BOOST_TEST(sizes == (std::vector<std::int64_t>{1, 0, 0}), boost::test_tools::per_element());
      }
      if (epoch == 0) seen.insert(seen.end(), joined.begin(), joined.end());
    }
  }
  std::sort(seen.begin(), seen.end());
  for (std::int64_t k = 0; k < 13; ++k) BOOST_TEST(seen[static_cast<std::size_t>(k)] == k);
  const ad::data::BatchIterator dropped(
      indexed(13), {.batch_size = 2, .drop_last = true, .num_shards = 3, .shard_index = 1});
  BOOST_TEST(dropped.num_batches() == 2);
  BOOST_CHECK_EXCEPTION(
      ad::data::BatchIterator(indexed(13), {.batch_size = 2, .num_shards = 3, .shard_index = 3}),
      ad::ValueError, (MessageHas{{"shard_index 3 is outside [0, num_shards) with num_shards 3"}}));
}

BOOST_AUTO_TEST_SUITE_END()
