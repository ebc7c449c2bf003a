// CSV and IDX loaders. Files are read through Boost.Iostreams, with a gzip_decompressor in front
// when the file starts with the gzip magic bytes 1f 8b; such a file is first decompressed once with
// zlib to check its CRC and length footers, so damaged data is never parsed.
#include "data/loaders.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <boost/iostreams/device/file_descriptor.hpp>
#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filtering_stream.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>
#include <vector>

#include "autodiff/file_util.h"

namespace ad::data {
namespace {

namespace io = boost::iostreams;

// A file opened for reading, decompressed on the fly when it is gzipped. The file is opened once,
// as a regular file (detail::open_regular_file: a FIFO, directory or device is refused without
// blocking), and a gzip file is checked whole (verify_gzip) before a byte of it is interpreted.
class Input {
 public:
  Input(std::string_view op, const std::string& path) : op_(op), path_(path) {
    const int fd = detail::open_regular_file(op, path);
    if (fd < 0) {
      if (errno == ENOENT) fail<NotFoundError>("no such file");
      fail<NotFoundError>(str("cannot open: ", std::strerror(errno)));
    }
    std::array<unsigned char, 2> magic{};
    const bool has_magic = ::pread(fd, magic.data(), magic.size(), 0) == 2;
    gzipped_ = has_magic && magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzipped_) {
      try {
        verify_gzip(fd);
      } catch (...) {
        ::close(fd);
        throw;
      }
      stream_.push(io::gzip_decompressor());
    }
    // The stream's device owns the descriptor from here on (io::close_handle).
    stream_.push(io::file_descriptor_source(fd, io::close_handle));
    // Let decompression errors escape as exceptions instead of a silent end of file.
    stream_.exceptions(std::ios::badbit);
  }

  std::istream& stream() { return stream_; }
  [[nodiscard]] bool gzipped() const { return gzipped_; }

  // Throws E with "op 'path': message".
  template <class E>
  [[noreturn]] void fail(const std::string& message) const {
    throw E(str(op_, " '", path_, "': ", message));
  }

  // Turns a decompression failure into a DataLossError saying where reading stopped.
  [[noreturn]] void fail_read(const std::ios_base::failure& e, const std::string& where) const {
    std::string reason = "read error";
    if (const auto* gz = dynamic_cast<const io::gzip_error*>(&e)) {
      switch (gz->error()) {
        case io::gzip::zlib_error:
          reason = "the compressed data ends early or is damaged (truncated download?)";
          break;
        case io::gzip::bad_crc:
        case io::gzip::bad_length:
          reason = "the gzip checksum does not match (damaged file)";
          break;
        default:
          reason = "the gzip header or footer is damaged";
      }
    }
    fail<DataLossError>(str(reason, ", ", where));
  }

 private:
  // Decompresses the whole file with zlib, keeping nothing, and checks every gzip member's CRC-32
  // and length footer (Boost's decompressor checks the CRC only, and only once the data before it
  // has been handed out). Throws DataLossError naming the compressed byte offset.
  void verify_gzip(int fd) const {
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw ResourceExhaustedError(str(op_, ": zlib"));
    const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
    std::vector<unsigned char> in(1 << 16);
    std::vector<unsigned char> out(1 << 16);
    off_t offset = 0;
    bool member_ended = false;
    while (true) {
      if (z.avail_in == 0) {
        const ssize_t n = ::pread(fd, in.data(), in.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail<DataLossError>(str("read error: ", std::strerror(errno)));
        if (n == 0) break;
        offset += n;
        z.next_in = in.data();
        z.avail_in = static_cast<uInt>(n);
      }
      if (member_ended) {  // another gzip member follows (concatenated files, as gzip -d reads)
        inflateReset(&z);
        member_ended = false;
      }
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int r = inflate(&z, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        member_ended = true;
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        const std::string reason = z.msg != nullptr ? z.msg : "zlib error";
        const bool footer =
            reason.find("check") != std::string::npos && reason.find("header") == std::string::npos;
        fail<DataLossError>(str(footer ? "the gzip checksum or length does not match (damaged file)"
                                       : "the compressed data is damaged",
                                " (zlib: ", reason, ") at compressed byte offset ",
                                offset - static_cast<off_t>(z.avail_in)));
      }
    }
    if (!member_ended) {
      fail<DataLossError>(str("the compressed data ends early or is damaged (truncated download?) ",
                              "at compressed byte offset ", offset));
    }
  }

  std::string_view op_;
  std::string path_;
  bool gzipped_ = false;
  io::filtering_istream stream_;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

template <class T>
bool parse(std::string_view field, T& value) {
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  return ec == std::errc() && end == field.data() + field.size() && !field.empty();
}

// Appends one CSV line's features and label; the number of fields must be num_features + 1.
void parse_csv_line(const Input& in, std::string_view line, std::int64_t line_number,
                    std::int64_t num_features, int num_classes, std::vector<float>& features,
                    std::vector<std::int64_t>& labels) {
  std::int64_t field_index = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    const std::string_view field =
        trim(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
    if (field_index < num_features) {
      float value = 0;
      if (!parse(field, value)) {
        in.fail<DataLossError>(str(
            "line ", line_number, ", field ", field_index + 1, ": '", field, "' is not a number",
            line_number == 1 ? " (if it is a header, set header = true)" : ""));
      }
      features.push_back(value);
    } else if (field_index == num_features) {
      std::int64_t label = 0;
      if (!parse(field, label)) {
        in.fail<DataLossError>(str("line ", line_number, ", field ", field_index + 1, ": label '",
                                   field, "' is not an integer"));
      }
      if (label < 0 || label >= num_classes) {
        in.fail<InvalidArgumentError>(
            str("line ", line_number, ": label ", label, " is outside [0, ", num_classes, ")"));
      }
      labels.push_back(label);
    }
    ++field_index;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (field_index != num_features + 1) {
    in.fail<DataLossError>(str("line ", line_number, " has ", field_index, " fields, expected ",
                               num_features + 1, " (", num_features, " features, then the label)"));
  }
}

Dataset load_csv_as(std::string_view op, const std::string& path, const CsvOptions& options) {
  Input in(op, path);
  std::vector<float> features;
  std::vector<std::int64_t> labels;
  std::int64_t num_features = options.num_features;
  std::int64_t line_number = 0;
  std::string line;
  try {
    while (std::getline(in.stream(), line)) {
      ++line_number;
      if (options.header && line_number == 1) continue;
      const std::string_view text = trim(line);
      if (text.empty()) in.fail<DataLossError>(str("line ", line_number, " is empty"));
      if (num_features < 0) {
        num_features = static_cast<std::int64_t>(std::count(text.begin(), text.end(), ','));
        if (num_features == 0) {
          in.fail<DataLossError>(str("line ", line_number,
                                     " has 1 field, expected features "
                                     "and a label"));
        }
      }
      parse_csv_line(in, text, line_number, num_features, options.num_classes, features, labels);
    }
  } catch (const std::ios_base::failure& e) {
    in.fail_read(e, str("after line ", line_number));
  }
  if (labels.empty()) in.fail<DataLossError>("the file has no rows");
  const auto n = static_cast<std::int64_t>(labels.size());
  return {.features = Array::from(features, {n, num_features}),
          .labels = Array::from(labels, {n}),
          .num_classes = options.num_classes};
}

// The whole (decompressed) content of an IDX file.
std::vector<unsigned char> read_all(Input& in) {
  std::vector<unsigned char> bytes;
  std::array<char, 1 << 16> chunk{};
  try {
    while (in.stream()) {
      in.stream().read(chunk.data(), chunk.size());
      bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + in.stream().gcount());
    }
  } catch (const std::ios_base::failure& e) {
    in.fail_read(e, str("at byte offset ", bytes.size(), in.gzipped() ? " (decompressed)" : ""));
  }
  return bytes;
}

std::uint32_t big_endian_u32(const std::vector<unsigned char>& bytes, std::size_t offset) {
  return (std::uint32_t{bytes[offset]} << 24U) | (std::uint32_t{bytes[offset + 1]} << 16U) |
         (std::uint32_t{bytes[offset + 2]} << 8U) | std::uint32_t{bytes[offset + 3]};
}

std::string hex32(std::uint32_t v) {
  std::array<char, 11> text{};
  std::snprintf(text.data(), text.size(), "0x%08x", v);
  return text.data();
}

constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dims
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim

// Checks an IDX file's magic number and size; returns its dims.
std::vector<std::int64_t> idx_dims(const Input& in, const std::vector<unsigned char>& bytes,
                                   std::uint32_t magic, const char* what) {
  if (bytes.size() < 4) {
    in.fail<DataLossError>(
        str("truncated: ", bytes.size(), " bytes, too short for the 4-byte IDX magic number"));
  }
  const std::uint32_t found = big_endian_u32(bytes, 0);
  if (found != magic) {
    const std::uint32_t other = magic == kIdxImagesMagic ? kIdxLabelsMagic : kIdxImagesMagic;
    in.fail<DataLossError>(str(
        "magic number is ", hex32(found), ", expected ", hex32(magic), " for IDX ", what,
        found == other ? "; are the images and labels files swapped?" : "; is this an IDX file?"));
  }
  const std::size_t rank = magic & 0xffU;
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header) {
    in.fail<DataLossError>(str("truncated at byte offset ", bytes.size(), ": the header of ", what,
                               " needs ", header, " bytes"));
  }
  std::vector<std::int64_t> dims(rank);
  std::int64_t count = 1;
  std::int64_t nonzero_product = 1;
  bool overflow = false;
  for (std::size_t i = 0; i < rank; ++i) {
    dims[i] = big_endian_u32(bytes, 4 + 4 * i);
    // A forged header can make the product wrap (2^31 * 2^31 * 4 is 0 mod 2^64) and pass the size
    // check below; the wrapped count must never be used. The product of the nonzero dims must fit
    // too: with 0 images, rows * cols is still computed.
    overflow |= __builtin_mul_overflow(count, dims[i], &count);
    if (dims[i] != 0) {
      overflow |= __builtin_mul_overflow(nonzero_product, dims[i], &nonzero_product);
    }
  }
  std::int64_t expected = 0;
  overflow |= __builtin_add_overflow(static_cast<std::int64_t>(header), count, &expected);
  if (overflow) {
    in.fail<DataLossError>(str("the header announces ", Shape(dims), " ", what,
                               ", more bytes than fit in int64 (damaged header)"));
  }
  const auto actual = static_cast<std::int64_t>(bytes.size());
  if (actual < expected) {
    in.fail<DataLossError>(str("truncated at byte offset ", actual,
                               in.gzipped() ? " (decompressed)" : "", ": the header announces ",
                               count, " bytes of ", what, ", so ", expected, " bytes in all"));
  }
  if (actual > expected) {
    in.fail<DataLossError>(str(actual - expected,
                               " unexpected bytes after the data, from byte offset ", expected,
                               "; the header announces ", count, " bytes of ", what));
  }
  return dims;
}

}  // namespace

Dataset load_csv(const std::string& path, const CsvOptions& options) {
  return load_csv_as("load_csv", path, options);
}

Dataset load_digits_csv(const std::string& path) {
  return load_csv_as("load_digits_csv", path, {.num_features = 64, .num_classes = 10});
}

Dataset load_mnist_idx(const std::string& images_path, const std::string& labels_path,
                       int num_classes) {
  return load_mnist_idx(images_path, labels_path, IdxOptions{.num_classes = num_classes});
}

Dataset load_mnist_idx(const std::string& images_path, const std::string& labels_path,
                       const IdxOptions& options) {
  const std::string_view op = "load_mnist_idx";
  const int num_classes = options.num_classes;
  if (options.features_dtype != DType::Float32 && options.features_dtype != DType::UInt8) {
    throw ValueError(
        str(op, ": features_dtype is ", options.features_dtype, "; expected float32 or uint8"));
  }
  Input images_in(op, images_path);
  const auto images = read_all(images_in);
  const auto image_dims = idx_dims(images_in, images, kIdxImagesMagic, "images");
  Input labels_in(op, labels_path);
  const auto labels = read_all(labels_in);
  const auto label_dims = idx_dims(labels_in, labels, kIdxLabelsMagic, "labels");

  const std::int64_t n = image_dims[0];
  if (label_dims[0] != n) {
    throw InvalidArgumentError(str(op, ": '", images_path, "' has ", n, " images but '",
                                   labels_path, "' has ", label_dims[0], " labels"));
  }
  constexpr std::size_t kLabelsHeader = 8;
  constexpr std::size_t kImagesHeader = 16;
  Dataset out{
      .features = Array::uninitialized(options.features_dtype, {n, image_dims[1] * image_dims[2]}),
      .labels = Array::uninitialized(DType::Int64, {n}),
      .num_classes = num_classes};
  auto y = out.labels.mutable_data<std::int64_t>();
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::int64_t label = labels[kLabelsHeader + i];
    if (label >= num_classes) {
      labels_in.fail<InvalidArgumentError>(str("label ", label, " at byte offset ",
                                               kLabelsHeader + i, " (example ", i,
                                               ") is outside [0, ", num_classes, ")"));
    }
    y[i] = label;
  }
  const unsigned char* pixels = images.data() + kImagesHeader;
  if (options.features_dtype == DType::UInt8) {
    auto x = out.features.mutable_data<std::uint8_t>();
    std::copy(pixels, pixels + x.size(), x.begin());
  } else {
    auto x = out.features.mutable_data<float>();
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = pixels[i];
  }
  return out;
}

}  // namespace ad::data
