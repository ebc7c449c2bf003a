// The few protobuf wire-format primitives the summary writer needs (internal): varints, fixed
// 64/32-bit little-endian fields and length-delimited fields, per
// https://protobuf.dev/programming-guides/encoding/. No libprotobuf: the messages are tiny.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ad::summary::detail {

enum class WireType : std::uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kFixed32 = 5
};

inline void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

inline void put_key(std::string& out, std::uint32_t field, WireType type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint32_t>(type));
}

inline void put_fixed64(std::string& out, std::uint64_t bits) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}

inline void put_fixed32(std::string& out, std::uint32_t bits) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}

inline void put_double(std::string& out, std::uint32_t field, double value) {
  put_key(out, field, WireType::kFixed64);
  put_fixed64(out, std::bit_cast<std::uint64_t>(value));
}

inline void put_float(std::string& out, std::uint32_t field, float value) {
  put_key(out, field, WireType::kFixed32);
  put_fixed32(out, std::bit_cast<std::uint32_t>(value));
}

// int64 fields are varints of the two's complement (10 bytes for a negative value).
inline void put_int64(std::string& out, std::uint32_t field, std::int64_t value) {
  put_key(out, field, WireType::kVarint);
  put_varint(out, static_cast<std::uint64_t>(value));
}

// A string, bytes or embedded message field.
inline void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, WireType::kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

}  // namespace ad::summary::detail
