// libFuzzer target for the TensorBoard event-file writer (ad::summary). The input is a script of
// summaries: scalar ones (any tag bytes, any float bits, any step), histograms of any doubles
// (NaN and infinities included), and a Merged of a scalar and a histogram op given fetched values
// of any dtype and shape. Each is serialized and appended to a FileWriter's file, which is then
// read back here with a reader written independently of the writer (bitwise CRC-32C, a minimal
// protobuf parser).
// Contract checked: every call either succeeds or throws an ad::Error; the file holds the version
// record and then exactly the summaries added, in order, each TFRecord frame's two masked CRCs
// right, each step as added, each tag's bytes and scalar's float bits as given, each histogram's
// count, min and max those of its values and its bucket counts adding up to the count.
#include <fuzzer/FuzzedDataProvider.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "fuzz/fuzz_util.h"

namespace {

// CRC-32C bit by bit, and TFRecord's mask.
std::uint32_t masked_crc(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (const char c : bytes) {
    crc ^= static_cast<unsigned char>(c);
    for (int k = 0; k < 8; ++k) crc = (crc & 1U) != 0 ? 0x82F63B78U ^ (crc >> 1) : crc >> 1;
  }
  crc = ~crc;
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8U;
}

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

struct Field {
  int wire = 0;
  std::uint64_t number = 0;
  std::string bytes;
};
using Message = std::multimap<std::uint64_t, Field>;

std::uint64_t varint(std::string_view data, std::size_t& at) {
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= data.size()) fuzz::fail("a varint runs past its message");
    const auto byte = static_cast<unsigned char>(data[at++]);
    value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  fuzz::fail("a varint longer than 10 bytes");
}

Message parse(std::string_view data) {
  Message m;
  for (std::size_t at = 0; at < data.size();) {
    const std::uint64_t key = varint(data, at);
    Field f;
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      f.number = varint(data, at);
    } else if (f.wire == 1 || f.wire == 5) {
      const std::size_t size = f.wire == 1 ? 8 : 4;
      if (at + size > data.size()) fuzz::fail("a fixed field runs past its message");
      f.number = little_endian(data.substr(at, size));
      at += size;
    } else if (f.wire == 2) {
      const std::uint64_t size = varint(data, at);
      if (size > data.size() - at) fuzz::fail("a bytes field runs past its message");
      f.bytes = std::string(data.substr(at, size));
      at += size;
    } else {
      fuzz::fail("wire type " + std::to_string(f.wire));
    }
    m.emplace(key >> 3, std::move(f));
  }
  return m;
}

const Field& only(const Message& m, std::uint64_t field, int wire) {
  if (m.count(field) != 1 || m.find(field)->second.wire != wire) {
    fuzz::fail("field " + std::to_string(field) + " missing, repeated or of another type");
  }
  return m.find(field)->second;
}

// What one added summary must read back as: one Value per entry.
struct Expected {
  std::string tag;
  std::optional<float> scalar;                // a simple_value
  std::optional<std::vector<double>> values;  // a histogram's values
};

void check_value(const Message& value, const Expected& e) {
  if (only(value, 1, 2).bytes != e.tag) fuzz::fail("a tag came back changed");
  if (e.scalar) {
    const auto bits = static_cast<std::uint32_t>(only(value, 2, 5).number);
    if (bits != std::bit_cast<std::uint32_t>(*e.scalar)) fuzz::fail("a scalar's bits changed");
    return;
  }
  const Message histo = parse(only(value, 5, 2).bytes);
  const auto as_double = [&](std::uint64_t field) {
    return std::bit_cast<double>(only(histo, field, 1).number);
  };
  const auto& values = *e.values;
  if (as_double(3) != static_cast<double>(values.size())) fuzz::fail("a histogram's count");
  if (!values.empty()) {
    double lo = values[0], hi = values[0];
    for (const double v : values) lo = std::min(lo, v), hi = std::max(hi, v);
    if (as_double(1) != lo || as_double(2) != hi) fuzz::fail("a histogram's min or max");
  }
  const std::string& limits = only(histo, 6, 2).bytes;
  const std::string& counts = only(histo, 7, 2).bytes;
  if (limits.size() != counts.size() || limits.size() % 8 != 0) fuzz::fail("bucket arrays");
  double total = 0, previous = -INFINITY;
  for (std::size_t i = 0; i < counts.size(); i += 8) {
    const double limit =
        std::bit_cast<double>(little_endian(std::string_view(limits).substr(i, 8)));
    if (!(limit > previous)) fuzz::fail("bucket limits do not increase");
    previous = limit;
    total += std::bit_cast<double>(little_endian(std::string_view(counts).substr(i, 8)));
  }
  if (total != static_cast<double>(values.size())) fuzz::fail("bucket counts do not add up");
}

// The records of `path`, each frame checked.
std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::string> records;
  for (std::size_t at = 0; at < file.size();) {
    if (file.size() - at < 16) fuzz::fail("a truncated record frame");
    const std::string_view head(file.data() + at, 8);
    const std::uint64_t length = little_endian(head);
    if (little_endian({file.data() + at + 8, 4}) != masked_crc(head)) fuzz::fail("length CRC");
    if (length > file.size() - at - 16) fuzz::fail("a record longer than the file");
    const std::string_view data(file.data() + at + 12, length);
    if (little_endian({file.data() + at + 12 + length, 4}) != masked_crc(data)) {
      fuzz::fail("data CRC");
    }
    records.emplace_back(data);
    at += 16 + length;
  }
  return records;
}

// A graph with a scalar and a histogram summary, for Merged::serialize.
struct SummaryGraph {
  ad::Graph graph;
  ad::summary::Merged merged;
  SummaryGraph() {
    const auto x = ad::placeholder(graph, ad::DType::Float32, {}, "x");
    const auto h = ad::placeholder(graph, ad::DType::Float64, {-1}, "h");
    merged =
        ad::summary::merge({ad::summary::scalar("loss", x), ad::summary::histogram("weights", h)});
  }
};

ad::Array fuzzed_array(FuzzedDataProvider& in) {
  const auto dtype = static_cast<ad::DType>(in.ConsumeIntegralInRange<int>(0, 3));
  const std::int64_t n = in.ConsumeIntegralInRange<std::int64_t>(0, 8);
  const ad::Shape shape = in.ConsumeBool() ? ad::Shape{n} : ad::Shape{};
  ad::Array a(dtype, shape);
  auto* raw = static_cast<unsigned char*>(a.raw_mutable_data());
  for (std::size_t i = 0; i < a.nbytes(); ++i) raw[i] = in.ConsumeIntegral<unsigned char>();
  if (dtype == ad::DType::Bool) {
    for (std::size_t i = 0; i < a.nbytes(); ++i) raw[i] &= 1U;
  }
  return a;
}

std::vector<double> fuzzed_doubles(FuzzedDataProvider& in) {
  std::vector<double> values(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto& v : values) {
    v = in.ConsumeBool() ? std::bit_cast<double>(in.ConsumeIntegral<std::uint64_t>())
                         : static_cast<double>(in.ConsumeIntegralInRange<int>(-3, 3));
  }
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ad::set_warning_handler([](std::string_view) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static SummaryGraph graph;
  FuzzedDataProvider in(data, size);
  const std::string logdir = fuzz::work_dir() + "/logs";
  std::vector<std::pair<std::int64_t, std::vector<Expected>>> added;
  std::string path;
  {
    ad::summary::FileWriter writer(logdir);
    path = writer.path();
    for (int k = 0; k < 8 && in.remaining_bytes() > 0; ++k) {
      const int kind = in.ConsumeIntegralInRange<int>(0, 2);
      const auto step = in.ConsumeIntegral<std::int64_t>();
      std::string summary;
      std::vector<Expected> expected;
      try {
        if (kind == 0) {
          const std::string tag = in.ConsumeRandomLengthString(64);
          const float value = std::bit_cast<float>(in.ConsumeIntegral<std::uint32_t>());
          summary = ad::summary::scalar_summary(tag, value);
          expected.push_back({tag, value, std::nullopt});
        } else if (kind == 1) {
          const std::string tag = in.ConsumeRandomLengthString(64);
          const auto values = fuzzed_doubles(in);
          summary = ad::summary::histogram_summary(tag, values);
          for (const double v : values) {
            if (!std::isfinite(v)) fuzz::fail("a histogram of a non-finite value was written");
          }
          expected.push_back({tag, std::nullopt, values});
        } else {
          const std::vector<ad::Array> fetched{fuzzed_array(in), fuzzed_array(in)};
          summary = graph.merged.serialize(fetched);
          const auto& h = fetched[1];
          if (fetched[0].dtype() != ad::DType::Float32 || fetched[0].size() != 1 ||
              h.dtype() != ad::DType::Float64) {
            fuzz::fail("Merged::serialize took values of the wrong dtype or size");
          }
          for (const double v : h.data<double>()) {
            if (!std::isfinite(v)) fuzz::fail("a merged histogram of a non-finite value");
          }
          expected.push_back({"loss", fetched[0].data<float>()[0], std::nullopt});
          const auto span = h.data<double>();
          expected.push_back(
              {"weights", std::nullopt, std::vector<double>(span.begin(), span.end())});
        }
      } catch (const ad::Error&) {
        continue;  // refused before anything was written
      }
      writer.add_summary(summary, step);
      added.emplace_back(step, std::move(expected));
    }
  }
  const auto records = read_records(path);
  std::filesystem::remove(path);
  if (records.size() != added.size() + 1) fuzz::fail("not one record per summary added");
  if (only(parse(records[0]), 3, 2).bytes != "brain.Event:2") fuzz::fail("no version record");
  for (std::size_t r = 0; r < added.size(); ++r) {
    const Message event = parse(records[r + 1]);
    if (static_cast<std::int64_t>(only(event, 2, 0).number) != added[r].first) {
      fuzz::fail("a step changed");
    }
    const Message summary = parse(only(event, 5, 2).bytes);
    const auto& expected = added[r].second;
    if (summary.count(1) != expected.size()) fuzz::fail("not one value per summary value");
    auto it = summary.find(1);
    for (const auto& e : expected) check_value(parse((it++)->second.bytes), e);
  }
  return 0;
}
