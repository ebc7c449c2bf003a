// Summaries and event files, read back by a decoder written independently of the encoder: a
// bitwise CRC-32C (checked against the published check value), a TFRecord reader and a generic
// protobuf wire-format parser. Expected values come from closed forms (means, sums, the bucket
// each value falls in per TF's bucket definition). The case writes_the_reference_event_file also
// feeds summary_reader_test.py, which reads the file with python3-protobuf.
#include "autodiff/summary.h"

#include <boost/test/unit_test.hpp>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace fs = std::filesystem;

namespace {

// ---- an independent reader -------------------------------------------------------------------

std::uint32_t bitwise_crc32c(std::string_view bytes) {
  std::uint32_t crc = ~0U;
  for (const char c : bytes) {
    crc ^= static_cast<unsigned char>(c);
    for (int k = 0; k < 8; ++k) crc = (crc & 1U) ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
  }
  return ~crc;
}

std::uint32_t unmask(std::uint32_t masked) {
  const std::uint32_t rotated = masked - 0xA282EAD8U;
  return (rotated >> 17) | (rotated << 15);
}

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

// The records of a TFRecord file, each CRC checked.
std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::string> records;
  std::size_t at = 0;
  while (at < file.size()) {
    BOOST_REQUIRE(at + 12 <= file.size());
    const std::string_view length_bytes(file.data() + at, 8);
    const std::uint64_t length = little_endian(length_bytes);
    BOOST_TEST(unmask(static_cast<std::uint32_t>(little_endian({file.data() + at + 8, 4}))) ==
               bitwise_crc32c(length_bytes));
    BOOST_REQUIRE(at + 12 + length + 4 <= file.size());
    const std::string data = file.substr(at + 12, length);
    BOOST_TEST(unmask(static_cast<std::uint32_t>(
                   little_endian({file.data() + at + 12 + length, 4}))) == bitwise_crc32c(data));
    records.push_back(data);
    at += 12 + length + 4;
  }
  return records;
}

struct Field {
  int wire_type = 0;
  std::uint64_t number = 0;  // varint, fixed32 or fixed64 bits
  std::string bytes;         // length-delimited
};
using Message = std::multimap<int, Field>;

std::uint64_t read_varint(std::string_view data, std::size_t& at) {
  std::uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    BOOST_REQUIRE(at < data.size());
    const auto byte = static_cast<unsigned char>(data[at++]);
    value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return value;
  }
}

Message parse(std::string_view data) {
  Message message;
  for (std::size_t at = 0; at < data.size();) {
    const std::uint64_t key = read_varint(data, at);
    Field f;
    f.wire_type = static_cast<int>(key & 7);
    if (f.wire_type == 0) {
      f.number = read_varint(data, at);
    } else if (f.wire_type == 1 || f.wire_type == 5) {
      const std::size_t size = f.wire_type == 1 ? 8 : 4;
      BOOST_REQUIRE(at + size <= data.size());
      f.number = little_endian(data.substr(at, size));
      at += size;
    } else {
      BOOST_REQUIRE(f.wire_type == 2);
      const std::uint64_t size = read_varint(data, at);
      BOOST_REQUIRE(at + size <= data.size());
      f.bytes = std::string(data.substr(at, size));
      at += size;
    }
    message.emplace(static_cast<int>(key >> 3), f);
  }
  return message;
}

const Field& only(const Message& m, int field, int wire_type) {
  BOOST_REQUIRE(m.count(field) == 1U);
  const Field& f = m.find(field)->second;
  BOOST_REQUIRE(f.wire_type == wire_type);
  return f;
}

double as_double(const Field& f) {
  double d = 0;
  std::memcpy(&d, &f.number, 8);
  return d;
}

float as_float(const Field& f) {
  const auto bits = static_cast<std::uint32_t>(f.number);
  float value = 0;
  std::memcpy(&value, &bits, 4);
  return value;
}

std::vector<double> packed_doubles(const Field& f) {
  BOOST_REQUIRE(f.bytes.size() % 8 == 0U);
  std::vector<double> out(f.bytes.size() / 8);
  std::memcpy(out.data(), f.bytes.data(), f.bytes.size());
  return out;
}

std::vector<Message> values_of(const Message& event) {
  const Message summary = parse(only(event, 5, 2).bytes);
  std::vector<Message> out;
  for (auto [it, end] = summary.equal_range(1); it != end; ++it)
    out.push_back(parse(it->second.bytes));
  return out;
}

// The upper limit of the TF default bucket holding v (the first limit above v):
// +-1e-12 * 1.1^k (k = 0, 1, ... while below 1e20), 0 and +-DBL_MAX.
double bucket_limit_of(double v) {
  std::vector<double> positive;
  for (double x = 1.0e-12; x < 1.0e20; x *= 1.1) positive.push_back(x);
  positive.push_back(DBL_MAX);
  if (v < 0) {
    for (auto it = positive.rbegin(); it != positive.rend(); ++it) {
      if (-*it > v) return -*it;
    }
    return 0.0;
  }
  for (const double limit : positive) {
    if (limit > v) return limit;
  }
  return DBL_MAX;
}

std::string only_event_file(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  BOOST_REQUIRE(files.size() == 1U);
  BOOST_TEST(fs::path(files[0]).filename().string().starts_with("events.out.tfevents."));
  return files[0];
}

const std::vector<double> kHistogramValues = {-2.5, -1e-13, 0.0, 0.3, 0.3, 7.0, 1e21};

// The reference file: three steps of a scalar "loss" (0.25 + 0.5 * step), a scalar
// "eval/accuracy" (step / 4) and a histogram "weights" of kHistogramValues * (step + 1).
std::string write_reference_file(const std::string& logdir) {
  ad::Graph g;
  const auto step = ad::placeholder(g, ad::DType::Float64, {}, "step");
  const auto values = ad::placeholder(g, ad::DType::Float32, {-1}, "values");
  (void)ad::summary::scalar("loss", 0.25 + 0.5 * step);
  {
    const ad::NameScope scope(g, "eval");
    (void)ad::summary::scalar("accuracy", step / 4.0);
  }
  (void)ad::summary::histogram("weights", values);
  const auto merged = ad::summary::merge_all(g);
  BOOST_REQUIRE(merged.fetches().size() == 3U);
  ad::Session session(g);
  ad::summary::FileWriter writer(logdir);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> v;
    for (const double x : kHistogramValues) v.push_back(static_cast<float>(x * (s + 1)));
    const auto summary =
        merged.run(session, {{step, ad::Array::scalar<double>(s)},
                             {values, ad::Array::from(v, {static_cast<std::int64_t>(v.size())})}});
    writer.add_summary(summary, 10 * s);
  }
  writer.close();
  return writer.path();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(summary_test)

BOOST_AUTO_TEST_CASE(crc32c_matches_the_published_check_value) {
  BOOST_TEST(ad::summary::detail::crc32c("123456789") == 0xE3069283U);
  BOOST_TEST(bitwise_crc32c("123456789") == 0xE3069283U);
  const std::string bytes = "\x00\xff some event bytes \x01";
  BOOST_TEST(ad::summary::detail::crc32c(bytes) == bitwise_crc32c(bytes));
  BOOST_TEST(unmask(ad::summary::detail::masked_crc32c(bytes)) == bitwise_crc32c(bytes));
}

BOOST_AUTO_TEST_CASE(writes_the_reference_event_file) {
  // With GRADTAPE_SUMMARY_OUT set (by summary_reader_test.py), the file is left there for the
  // Python reader; otherwise in a temporary directory.
  const char* out = std::getenv("GRADTAPE_SUMMARY_OUT");
  const fs::path dir =
      out != nullptr ? fs::path(out)
                     : fs::temp_directory_path() / ("summary_test." + std::to_string(::getpid()));
  fs::remove_all(dir);
  const double before = static_cast<double>(std::time(nullptr));
  const std::string path = write_reference_file(dir.string());
  BOOST_TEST(path == only_event_file(dir));
  const auto records = read_records(path);
  BOOST_REQUIRE(records.size() == 4U);
  const Message first = parse(records[0]);
  BOOST_TEST(only(first, 3, 2).bytes == "brain.Event:2");
  BOOST_TEST(as_double(only(first, 1, 1)) >= before - 1);
  BOOST_TEST(as_double(only(first, 1, 1)) <= static_cast<double>(std::time(nullptr)) + 1);
  for (int s = 0; s < 3; ++s) {
    const Message e = parse(records[static_cast<std::size_t>(s) + 1]);
    BOOST_TEST(static_cast<std::int64_t>(only(e, 2, 0).number) == 10 * s);
    const auto values = values_of(e);
    BOOST_REQUIRE(values.size() == 3U);
    BOOST_TEST(only(values[0], 1, 2).bytes == "loss");
    BOOST_TEST(as_float(only(values[0], 2, 5)) == 0.25F + 0.5F * static_cast<float>(s));
    BOOST_TEST(only(values[1], 1, 2).bytes == "eval/accuracy");
    BOOST_TEST(as_float(only(values[1], 2, 5)) == static_cast<float>(s) / 4.0F);
    BOOST_TEST(only(values[2], 1, 2).bytes == "weights");
    const Message histo = parse(only(values[2], 5, 2).bytes);
    std::vector<double> x;  // the float32 values the histogram saw
    for (const double v : kHistogramValues) x.push_back(static_cast<float>(v * (s + 1)));
    double sum = 0;
    double sum_squares = 0;
    for (const double v : x) {
      sum += v;
      sum_squares += v * v;
    }
    BOOST_TEST(as_double(only(histo, 1, 1)) == x.front());
    BOOST_TEST(as_double(only(histo, 2, 1)) == x.back());
    BOOST_TEST(as_double(only(histo, 3, 1)) == 7.0);
    BOOST_TEST(as_double(only(histo, 4, 1)) == sum, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(as_double(only(histo, 5, 1)) == sum_squares, boost::test_tools::tolerance(1e-15));
    const auto limits = packed_doubles(only(histo, 6, 2));
    const auto counts = packed_doubles(only(histo, 7, 2));
    BOOST_REQUIRE(limits.size() == counts.size());
    std::map<double, double> nonzero;
    for (std::size_t i = 0; i < limits.size(); ++i) {
      if (counts[i] != 0) nonzero[limits[i]] += counts[i];
      if (i > 0) BOOST_TEST(limits[i] > limits[i - 1]);
    }
    std::map<double, double> expected;
    for (const double v : x) expected[bucket_limit_of(v)] += 1;
    BOOST_TEST(nonzero == expected);
    // Runs of empty buckets are collapsed: never two empty entries in a row, and the last limit
    // is DBL_MAX (the value 1e21 * (s + 1) lands in that bucket).
    for (std::size_t i = 1; i < counts.size(); ++i)
      BOOST_TEST(!(counts[i] == 0 && counts[i - 1] == 0));
    BOOST_TEST(limits.back() == DBL_MAX);
  }
  if (out == nullptr) fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(an_empty_histogram_has_one_bucket_as_in_tf) {
  const Message value = parse(parse(ad::summary::histogram_summary("h", {})).find(1)->second.bytes);
  const Message histo = parse(only(value, 5, 2).bytes);
  BOOST_TEST(as_double(only(histo, 1, 1)) == DBL_MAX);
  BOOST_TEST(as_double(only(histo, 2, 1)) == -DBL_MAX);
  BOOST_TEST(as_double(only(histo, 3, 1)) == 0.0);
  // All buckets empty collapse into one, at the last limit.
  BOOST_TEST(packed_doubles(only(histo, 6, 2)) == std::vector<double>{DBL_MAX});
  BOOST_TEST(packed_doubles(only(histo, 7, 2)) == std::vector<double>{0.0});
}

BOOST_AUTO_TEST_CASE(summary_ops_fetch_with_a_train_op_and_check_their_inputs) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float32, {2}, "x");
  const auto w = ad::Variable::create(g, "w", {.shape = {}, .dtype = ad::DType::Int64});
  const auto s = ad::summary::scalar("w", w.value());  // int64, cast to float32
  const auto h = ad::summary::histogram("x", x);
  BOOST_TEST(s.name() == "w_1:0");  // "w" names the variable: uniquified, as TF does
  BOOST_TEST(g.get_collection(ad::GraphKeys::SUMMARIES).size() == 2U);
  const auto merged = ad::summary::merge({s});
  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  const auto out = session.run({w.initializer(), s}, {});
  const auto bytes = merged.serialize(std::span(out).subspan(1));
  const Message value = parse(parse(bytes).find(1)->second.bytes);
  BOOST_TEST(as_float(only(value, 2, 5)) == 0.0F);
  BOOST_CHECK_THROW((void)ad::summary::scalar("bad", x), ad::ValueError);
  BOOST_CHECK_THROW((void)ad::summary::merge({x}), ad::ValueError);
  BOOST_CHECK_THROW((void)merged.serialize({}), ad::InvalidArgumentError);
  const float nan = std::nanf("");
  BOOST_CHECK_EXCEPTION((void)session.run({h}, {{x, ad::Array::from<float>({1.0F, nan}, {2})}}),
                        ad::InvalidArgumentError, (MessageHas{{"Nan in summary histogram"}}));
}

BOOST_AUTO_TEST_CASE(writers_in_one_directory_do_not_share_a_file) {
  const fs::path dir = fs::temp_directory_path() / ("summary_two." + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    ad::summary::FileWriter a(dir.string());
    ad::summary::FileWriter b(dir.string());
    BOOST_TEST(a.path() != b.path());
    a.add_summary(ad::summary::scalar_summary("a", 1.0F), 1);
    a.close();
    BOOST_CHECK_THROW(a.add_summary(ad::summary::scalar_summary("a", 1.0F), 2),
                      ad::FailedPreconditionError);
    BOOST_TEST(read_records(a.path()).size() == 2U);
    BOOST_TEST(read_records(b.path()).size() == 1U);
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
