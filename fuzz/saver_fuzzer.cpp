// libFuzzer target for Saver::restore. The first byte picks how the rest is used:
//   0:    the whole checkpoint file, as is;
//   1-3:  the payload of a binary (1), text (2) or XML (3) archive, behind a header with the right
//         length and CRC-32, so mutations reach the archive decoder instead of failing the
//         checksum.
// Contract checked: restore either succeeds, leaving every variable with its declared dtype and
// shape (and bools 0 or 1), or throws an ad::Error and leaves every value bit for bit unchanged.
// Any other exception escapes and is reported as a crash.
//
// With GRADTAPE_FUZZ_WRITE_SEEDS=<dir> in the environment, it writes seed inputs (real checkpoints
// of its model in the three formats) to <dir> and exits.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "fuzz/fuzz_util.h"

namespace {

struct Model {
  ad::Graph graph;
  std::vector<ad::Variable> variables;
  std::vector<ad::Array> initial;
  std::vector<ad::Tensor> reads;
  std::unique_ptr<ad::Session> session;
  std::unique_ptr<ad::Saver> saver;

  Model() {
    auto add = [&](const char* name, ad::DType dtype, ad::Shape shape) {
      variables.push_back(ad::Variable::create(graph, name, {.shape = shape, .dtype = dtype}));
    };
    add("dense/kernel", ad::DType::Float32, {3, 2});
    add("dense/bias", ad::DType::Float64, {2});
    add("global_step", ad::DType::Int64, {});
    add("mask", ad::DType::Bool, {3});
    for (const auto& v : variables) reads.push_back(v.value());
    session = std::make_unique<ad::Session>(graph);
    initial = {ad::Array::from<float>({1.5f, -2.f, 0.25f, 1e-8f, 3e8f, -0.f}, {3, 2}),
               ad::Array::from<double>({0.1, -7.0}, {2}), ad::Array::scalar<std::int64_t>(42),
               ad::Array::from<bool>({true, false, true}, {3})};
    reset();
    saver = std::make_unique<ad::Saver>(graph);
  }

  void reset() {
    for (std::size_t i = 0; i < variables.size(); ++i) session->set_value(variables[i], initial[i]);
  }
};

Model& model() {
  static Model m;
  return m;
}

// CRC-32 (zlib's), bit by bit: independent of the Saver's table-driven one.
std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1U) != 0 ? 0xEDB88320U ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

std::string header_for(int mode, const std::uint8_t* payload, std::size_t size) {
  static constexpr std::array<const char*, 3> kFormats = {"binary", "text", "xml"};
  std::array<char, 16> crc{};
  std::snprintf(crc.data(), crc.size(), "%x", crc32(payload, size));
  return std::string("gradtape-checkpoint 1 ") + kFormats[static_cast<std::size_t>(mode - 1)] +
         " le " + std::to_string(size) + " " + crc.data() + "\n";
}

void write_seeds(const std::string& dir) {
  Model& m = model();
  std::filesystem::create_directories(dir);
  int index = 0;
  for (auto format :
       {ad::ArchiveFormat::kBinary, ad::ArchiveFormat::kText, ad::ArchiveFormat::kXml}) {
    const std::string path = dir + "/checkpoint.tmp";
    ad::Saver(m.graph, {}, {.format = format}).save(*m.session, path);
    std::ifstream in(path, std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(path);
    const std::string payload = file.substr(file.find('\n') + 1);
    ++index;
    std::ofstream(dir + "/file_" + std::to_string(index), std::ios::binary)
        << std::string(1, '\0') << file;
    std::ofstream(dir + "/payload_" + std::to_string(index), std::ios::binary)
        << std::string(1, static_cast<char>(index)) << payload;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ad::set_warning_handler([](std::string_view) {});
  if (const char* dir = std::getenv("GRADTAPE_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Model& m = model();
  const int mode = data[0] % 4;
  std::string bytes;
  if (mode != 0) bytes = header_for(mode, data + 1, size - 1);
  bytes.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string path = fuzz::write_file(
      "checkpoint", reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());

  std::vector<ad::Array> before;
  for (const auto& v : m.variables) before.push_back(m.session->value(v).clone());
  try {
    m.saver->restore(*m.session, path);
  } catch (const ad::Error&) {
    for (std::size_t i = 0; i < m.variables.size(); ++i) {
      if (!m.session->value(m.variables[i]).bitwise_equal(before[i])) {
        fuzz::fail("a failed restore changed '" + m.variables[i].name() + "'");
      }
    }
    return 0;
  }
  for (const auto& v : m.variables) {
    const ad::Array value = m.session->value(v);
    if (value.dtype() != v.dtype() || !(value.shape() == v.shape())) {
      fuzz::fail("restore gave '" + v.name() + "' another dtype or shape");
    }
    if (value.dtype() == ad::DType::Bool) {
      const auto* raw = static_cast<const unsigned char*>(value.raw_data());
      for (std::size_t b = 0; b < value.nbytes(); ++b) {
        if (raw[b] > 1) fuzz::fail("restore gave '" + v.name() + "' a bool that is not 0 or 1");
      }
    }
  }
  // The restored values must be what a run reads.
  const auto read = m.session->run(m.reads);
  for (std::size_t i = 0; i < m.variables.size(); ++i) {
    if (!read[i].bitwise_equal(m.session->value(m.variables[i]))) {
      fuzz::fail("a run reads another value of '" + m.variables[i].name() + "' than restored");
    }
  }
  m.reset();
  return 0;
}
