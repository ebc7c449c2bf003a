// Loaders: the bundled digits file, CSV and IDX files the tests write (plain and gzipped), and one
// case per kind of bad file with the text of its error.
#include "data/loaders.h"

#include <unistd.h>

#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filtering_stream.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/gradient_check.h"

namespace fs = std::filesystem;
using ad::testing::MessageHas;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir {
  TempDir()
      : dir(fs::temp_directory_path() /
            ("gradtape_loaders_test_" + std::to_string(::getpid()) + "_" +
             boost::unit_test::framework::current_test_case().p_name.get())) {
    fs::create_directories(dir);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string write(const std::string& name, const std::string& bytes) const {
    const fs::path file = dir / name;
    std::ofstream(file, std::ios::binary) << bytes;
    return file.string();
  }
  std::string write_gzip(const std::string& name, const std::string& bytes) const {
    std::string packed;
    {
      boost::iostreams::filtering_ostream out;
      out.push(boost::iostreams::gzip_compressor());
      out.push(std::back_inserter(packed));
      out << bytes;
    }
    return write(name, packed);
  }

  fs::path dir;
};

std::string bundled_digits() {
  const char* root = std::getenv("GRADTAPE_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/examples/data/digits.csv.gz";
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// An IDX images file of n images of rows x cols bytes, pixel (i, r, c) = (i * 7 + r * cols + c).
std::string idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::string out;
  put_u32(out, 0x00000803);
  put_u32(out, n);
  put_u32(out, rows);
  put_u32(out, cols);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t p = 0; p < rows * cols; ++p) out.push_back(static_cast<char>(i * 7 + p));
  return out;
}

std::string idx_labels(const std::vector<unsigned char>& labels) {
  std::string out;
  put_u32(out, 0x00000801);
  put_u32(out, static_cast<std::uint32_t>(labels.size()));
  for (const unsigned char label : labels) out.push_back(static_cast<char>(label));
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(loaders_test, TempDir)

BOOST_AUTO_TEST_CASE(bundled_digits_has_1797_rows_and_sklearns_class_counts) {
  const auto d = ad::data::load_digits_csv(bundled_digits());
  BOOST_TEST(d.size() == 1797);
  BOOST_TEST(d.num_features() == 64);
  BOOST_TEST(d.num_classes == 10);
  BOOST_TEST(d.features.shape() == ad::Shape({1797, 64}));
  // sklearn.datasets.load_digits(): np.bincount(target).
  const std::vector<std::int64_t> expected{178, 182, 177, 183, 181, 182, 181, 179, 174, 180};
  BOOST_TEST(d.class_counts() == expected, boost::test_tools::per_element());
  // The first row of the file: 0,0,5,13,9,1,0,0,0,0,13,... label 0.
  BOOST_TEST(d.features.at({0, 2}) == 5.0);
  BOOST_TEST(d.features.at({0, 3}) == 13.0);
  BOOST_TEST(d.features.at({0, 10}) == 13.0);
  BOOST_TEST(d.labels.at({0}) == 0.0);
  // The last row ends with ...,14,12,1,0,8.
  BOOST_TEST(d.features.at({1796, 61}) == 12.0);
  BOOST_TEST(d.labels.at({1796}) == 8.0);
  for (const float v : d.features.data<float>()) {
    if (v < 0.f || v > 16.f) BOOST_FAIL("pixel " << v << " outside 0..16");
  }
}

BOOST_AUTO_TEST_CASE(plain_and_gzipped_csv_read_the_same) {
  const std::string text = "1,2.5,3\n4,-5,6\r\n";
  for (const auto& path : {write("a.csv", text), write_gzip("a.csv.gz", text)}) {
    const auto d = ad::data::load_csv(path);
    BOOST_TEST(d.features.shape() == ad::Shape({2, 2}));
    const std::vector<float> x(d.features.data<float>().begin(), d.features.data<float>().end());
    BOOST_TEST(x == (std::vector<float>{1.f, 2.5f, 4.f, -5.f}), boost::test_tools::per_element());
    BOOST_TEST(d.labels.at({0}) == 3.0);
    BOOST_TEST(d.labels.at({1}) == 6.0);
  }
}

BOOST_AUTO_TEST_CASE(csv_header_is_skipped_when_asked) {
  const auto path = write("h.csv", "x0,x1,label\n0.5,1,2\n");
  const auto d = ad::data::load_csv(path, {.num_classes = 3, .header = true});
  BOOST_TEST(d.size() == 1);
  BOOST_TEST(d.num_classes == 3);
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(path), ad::DataLossError,
                        (MessageHas{{"load_csv '", "h.csv'",
                                     "line 1, field 1: 'x0' is not a number", "header = true"}}));
}

BOOST_AUTO_TEST_CASE(missing_file_is_not_found) {
  const std::string path = (dir / "nope.csv.gz").string();
  BOOST_CHECK_EXCEPTION((void)ad::data::load_digits_csv(path), ad::NotFoundError,
                        (MessageHas{{"load_digits_csv '" + path + "': no such file"}}));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(path, path), ad::NotFoundError,
                        (MessageHas{{"load_mnist_idx '" + path + "': no such file"}}));
}

BOOST_AUTO_TEST_CASE(wrong_column_count_names_the_line) {
  std::string text;
  for (int i = 0; i < 65; ++i) text += (i ? ",0" : "0");
  text += "\n1,2,3\n";
  const auto path = write("cols.csv", text);
  BOOST_CHECK_EXCEPTION((void)ad::data::load_digits_csv(path), ad::DataLossError,
                        (MessageHas{{"cols.csv'", "line 2 has 3 fields, expected 65",
                                     "64 features, then the label"}}));
}

BOOST_AUTO_TEST_CASE(non_numeric_field_names_line_and_field) {
  const auto path = write("nan.csv", "1,2,3\n4,five,6\n");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(path), ad::DataLossError,
                        (MessageHas{{"nan.csv'", "line 2, field 2: 'five' is not a number"}}));
  const auto fractional = write("frac.csv", "1,2,3.5\n");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(fractional), ad::DataLossError,
                        (MessageHas{{"line 1, field 3: label '3.5' is not an integer"}}));
  const auto blank = write("blank.csv", "1,2,3\n\n4,5,6\n");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(blank), ad::DataLossError,
                        (MessageHas{{"line 2 is empty"}}));
}

BOOST_AUTO_TEST_CASE(label_out_of_range_is_an_invalid_argument) {
  const auto path = write_gzip("labels.csv.gz", "1,2,3\n4,5,12\n");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(path), ad::InvalidArgumentError,
                        (MessageHas{{"labels.csv.gz'", "line 2: label 12 is outside [0, 10)"}}));
  const auto negative = write("neg.csv", "1,2,-1\n");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(negative), ad::InvalidArgumentError,
                        (MessageHas{{"line 1: label -1 is outside [0, 10)"}}));
}

BOOST_AUTO_TEST_CASE(truncated_or_damaged_gzip_is_data_loss) {
  std::ifstream in(bundled_digits(), std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto truncated = write("cut.csv.gz", whole.substr(0, whole.size() / 2));
  // The whole file is verified before parsing, so the error names the compressed byte offset.
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_digits_csv(truncated), ad::DataLossError,
      (MessageHas{{"cut.csv.gz'", "ends early",
                   "at compressed byte offset " + std::to_string(whole.size() / 2)}}));
  const auto header_only = write("head.csv.gz", whole.substr(0, 5));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_digits_csv(header_only), ad::DataLossError,
                        (MessageHas{{"head.csv.gz'", "ends early", "byte offset 5"}}));
  const auto empty = write("empty.csv", "");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_digits_csv(empty), ad::DataLossError,
                        (MessageHas{{"empty.csv'", "the file has no rows"}}));
}

BOOST_AUTO_TEST_CASE(idx_plain_and_gzipped_give_the_same_dataset) {
  const std::vector<unsigned char> labels{3, 0, 9};
  for (const bool gz : {false, true}) {
    const auto images_path =
        gz ? write_gzip("img.gz", idx_images(3, 2, 3)) : write("img.idx", idx_images(3, 2, 3));
    const auto labels_path =
        gz ? write_gzip("lab.gz", idx_labels(labels)) : write("lab.idx", idx_labels(labels));
    const auto d = ad::data::load_mnist_idx(images_path, labels_path);
    BOOST_TEST(d.features.shape() == ad::Shape({3, 6}));
    BOOST_TEST(d.num_classes == 10);
    for (std::int64_t i = 0; i < 3; ++i) {
      for (std::int64_t p = 0; p < 6; ++p) BOOST_TEST(d.features.at({i, p}) == double(i * 7 + p));
      BOOST_TEST(d.labels.at({i}) == double(labels[static_cast<std::size_t>(i)]));
    }
  }
}

// Pixel (i, r, c) of idx_images is i * 7 + r * cols + c: with 40 images of 2 x 3 the last ones pass
// 255, so the bytes wrap (mod 256) as a file's bytes do; the uint8 features are exactly those bytes
// and the default float32 features the same numbers.
BOOST_AUTO_TEST_CASE(idx_loads_uint8_images_when_asked) {
  std::vector<unsigned char> labels(40);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<unsigned char>(i % 10);
  const auto images_path = write("img.idx", idx_images(40, 2, 3));
  const auto labels_path = write("lab.idx", idx_labels(labels));
  const auto bytes =
      ad::data::load_mnist_idx(images_path, labels_path, {.features_dtype = ad::DType::UInt8});
  const auto floats = ad::data::load_mnist_idx(images_path, labels_path);
  BOOST_TEST(bytes.features.dtype() == ad::DType::UInt8);
  BOOST_TEST(floats.features.dtype() == ad::DType::Float32);
  BOOST_TEST(bytes.features.shape() == ad::Shape({40, 6}));
  const auto pixels = bytes.features.data<std::uint8_t>();
  for (std::int64_t i = 0; i < 40; ++i) {
    for (std::int64_t p = 0; p < 6; ++p) {
      const auto expected = static_cast<std::uint8_t>((i * 7 + p) % 256);
      BOOST_TEST(pixels[static_cast<std::size_t>(i * 6 + p)] == expected);
      BOOST_TEST(floats.features.at({i, p}) == double(expected));
    }
  }
  BOOST_TEST(bytes.labels.dtype() == ad::DType::Int64);
  // Batches keep the dtype and pick the same rows as the float32 data set's.
  ad::data::BatchIterator byte_batches(bytes, {.batch_size = 16, .seed = 3});
  ad::data::BatchIterator float_batches(floats, {.batch_size = 16, .seed = 3});
  const auto b = byte_batches.batch(1, 2);
  const auto f = float_batches.batch(1, 2);
  BOOST_TEST(b.features.dtype() == ad::DType::UInt8);
  BOOST_TEST(b.features.shape() == ad::Shape({8, 6}));
  BOOST_TEST(b.features.astype(ad::DType::Float32).bitwise_equal(f.features));
  BOOST_TEST(b.labels.bitwise_equal(f.labels));
  BOOST_CHECK_EXCEPTION((void)ad::data::scale_features(bytes, 1.0 / 255), ad::ValueError,
                        (MessageHas{{"scale_features", "uint8", "needs float32 features"}}));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(images_path, labels_path,
                                                       {.features_dtype = ad::DType::Int32}),
                        ad::ValueError,
                        (MessageHas{{"load_mnist_idx", "int32", "expected float32 or uint8"}}));
}

BOOST_AUTO_TEST_CASE(idx_wrong_magic_says_what_was_expected) {
  const auto images = write("img.idx", idx_images(2, 2, 2));
  const auto labels = write("lab.idx", idx_labels({1, 2}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_mnist_idx(labels, images), ad::DataLossError,
      (MessageHas{{"lab.idx'", "magic number is 0x00000801", "expected 0x00000803", "swapped"}}));
  std::string text = idx_images(2, 2, 2);
  text[2] = 0x0d;  // float32 elements
  const auto floats = write("float.idx", text);
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(floats, labels), ad::DataLossError,
                        (MessageHas{{"float.idx'", "magic number is 0x00000d03"}}));
}

BOOST_AUTO_TEST_CASE(idx_truncated_names_the_byte_offset) {
  const auto labels = write("lab.idx", idx_labels({1, 2}));
  // Header 16 bytes + 2 * 4 pixels = 24 bytes; keep 21.
  const auto images = write("img.idx", idx_images(2, 2, 2).substr(0, 21));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(images, labels), ad::DataLossError,
                        (MessageHas{{"img.idx'", "truncated at byte offset 21",
                                     "announces 8 bytes of images", "24 bytes in all"}}));
  const auto short_header = write("hdr.idx", idx_images(2, 2, 2).substr(0, 10));
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_mnist_idx(short_header, labels), ad::DataLossError,
      (MessageHas{{"hdr.idx'", "truncated at byte offset 10", "needs 16 bytes"}}));
  const auto gz = write_gzip("img.gz", idx_images(2, 2, 2).substr(0, 20));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(gz, labels), ad::DataLossError,
                        (MessageHas{{"img.gz'", "truncated at byte offset 20 (decompressed)"}}));
  const auto longer = write("long.idx", idx_labels({1, 2}) + "xy");
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(write("i.idx", idx_images(2, 2, 2)), longer),
                        ad::DataLossError,
                        (MessageHas{{"long.idx'", "2 unexpected bytes", "byte offset 10"}}));
}

BOOST_AUTO_TEST_CASE(idx_counts_and_labels_are_checked) {
  const auto images = write("img.idx", idx_images(3, 2, 2));
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_mnist_idx(images, write("two.idx", idx_labels({1, 2}))),
      ad::InvalidArgumentError, (MessageHas{{"img.idx' has 3 images", "two.idx' has 2 labels"}}));
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_mnist_idx(images, write("bad.idx", idx_labels({1, 11, 2}))),
      ad::InvalidArgumentError,
      (MessageHas{{"bad.idx'", "label 11 at byte offset 9 (example 1) is outside [0, 10)"}}));
}

BOOST_AUTO_TEST_SUITE_END()
