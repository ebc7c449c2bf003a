// BatchIterator and train_test_split at the edges of int64 and double: a batch_size near INT64_MAX
// gives one batch per epoch (not -1 batches and an endless epoch), the largest epoch index works,
// and a NaN fraction is a ValueError (not a cast of NaN to int64).
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>
#include <vector>

#include "data/dataset.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

ad::data::Dataset examples(std::int64_t n) {
  std::vector<float> features;
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    features.push_back(static_cast<float>(i));
    labels.push_back(i % 3);
  }
  return {.features = ad::Array::from(features, {n, 1}),
          .labels = ad::Array::from(labels, {n}),
          .num_classes = 3};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batching_test)

BOOST_AUTO_TEST_CASE(a_batch_size_near_int64_max_gives_one_batch_per_epoch) {
  for (const std::int64_t batch_size : {kMax, kMax - 1, kMax / 2 + 1, std::int64_t{7}}) {
    BOOST_TEST_CONTEXT("batch_size " << batch_size) {
      const ad::data::BatchIterator batches(examples(7), {.batch_size = batch_size, .seed = 3});
      BOOST_TEST(batches.num_batches() == 1);
      std::int64_t seen = 0;
      std::int64_t batches_in_epoch = 0;
      for (const auto& batch : batches.epoch(0)) {
        seen += batch.labels.size();
        BOOST_REQUIRE(++batches_in_epoch <= 1);  // an endless epoch stops here
      }
      BOOST_TEST(seen == 7);
      BOOST_CHECK_THROW((void)batches.batch(0, 1), ad::OutOfRangeError);
    }
  }
  // drop_last with a batch larger than the data leaves no batch at all: refused when built.
  BOOST_CHECK_EXCEPTION(
      ad::data::BatchIterator(examples(7), {.batch_size = kMax, .drop_last = true}), ad::ValueError,
      (MessageHas{{"BatchIterator", "make no batch"}}));
}

BOOST_AUTO_TEST_CASE(batch_counts_match_the_closed_form) {
  for (std::int64_t n = 1; n <= 12; ++n) {
    for (std::int64_t b = 1; b <= 13; ++b) {
      const ad::data::BatchIterator batches(examples(n), {.batch_size = b, .shuffle = false});
      const std::int64_t expected = (n + b - 1) / b;  // small values: no overflow here
      BOOST_TEST(batches.num_batches() == expected);
      std::int64_t seen = 0;
      for (const auto& batch : batches.epoch(1)) seen += batch.labels.size();
      BOOST_TEST(seen == n);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_largest_epoch_index_is_an_ordinary_epoch) {
  const ad::data::BatchIterator batches(examples(5), {.batch_size = 2, .seed = 9});
  std::vector<float> order;
  for (const auto& batch : batches.epoch(kMax)) {
    for (const float v : batch.features.data<float>()) order.push_back(v);
  }
  BOOST_TEST(order.size() == 5U);
  std::vector<float> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  BOOST_TEST(sorted == (std::vector<float>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_nan_or_infinite_test_fraction_is_a_value_error) {
  for (const double fraction : {std::numeric_limits<double>::quiet_NaN(),
                                std::numeric_limits<double>::infinity(), -0.5, 1e300}) {
    BOOST_CHECK_EXCEPTION((void)ad::data::train_test_split(examples(10), fraction, 1),
                          ad::ValueError, (MessageHas{{"train_test_split", "test_fraction"}}));
  }
  const auto split = ad::data::train_test_split(examples(10), 0.25, 1);
  BOOST_TEST(split.test.size() == 3);
  BOOST_TEST(split.train.size() == 7);
}

BOOST_AUTO_TEST_SUITE_END()
