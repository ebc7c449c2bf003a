// ad::Shape: the dimensions of an array or tensor. In a tensor's static shape a dimension may be
// -1 (unknown until run time, typically the batch).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

namespace ad {

class Shape {
 public:
  // Ranks up to kMaxRank are supported; dims are stored inline, so shapes never allocate.
  static constexpr int kMaxRank = 8;

  Shape() = default;  // a scalar: rank 0, one element
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims)
      : Shape(std::span<const std::int64_t>(dims)) {}

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] std::int64_t operator[](int axis) const {
    return dims_[static_cast<unsigned>(axis)];
  }
  [[nodiscard]] std::int64_t& operator[](int axis) { return dims_[static_cast<unsigned>(axis)]; }
  [[nodiscard]] std::span<const std::int64_t> dims() const {
    return {dims_.data(), static_cast<std::size_t>(rank_)};
  }
  [[nodiscard]] std::vector<std::int64_t> to_vector() const {
    return {dims().begin(), dims().end()};
  }

  // True when no dimension is -1.
  [[nodiscard]] bool is_fully_defined() const;
  // Product of the dims (1 for a scalar); -1 when some dim is unknown. Throws ValueError when the
  // product does not fit in int64.
  [[nodiscard]] std::int64_t num_elements() const;
  // True when the two shapes could describe the same array (equal rank, dims equal or unknown).
  // Inline: the session checks every output of every node with it.
  [[nodiscard]] bool is_compatible_with(const Shape& other) const {
    if (rank_ != other.rank_) return false;
    for (int i = 0; i < rank_; ++i) {
      const auto a = (*this)[i];
      const auto b = other[i];
      if (a >= 0 && b >= 0 && a != b) return false;
    }
    return true;
  }

  void push_back(std::int64_t dim);
  void insert(int axis, std::int64_t dim);
  void erase(int axis);

  // "[32, 64]"; unknown dims print as "?", a scalar as "[]".
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

std::ostream& operator<<(std::ostream& out, const Shape& shape);

// Resolves a possibly negative axis against a rank; throws ValueError naming `op` when out of
// range.
[[nodiscard]] int normalize_axis(int axis, int rank, const char* op);

}  // namespace ad
