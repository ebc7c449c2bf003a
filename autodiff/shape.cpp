// Shape: inline dims, formatting and the element count with overflow checks.
#include "autodiff/shape.h"

#include <ostream>

#include "autodiff/error.h"

namespace ad {

namespace {
// The checks run for every Shape built, kernels' run-time shapes included: the cheap test inlines,
// the message is built out of line.
[[noreturn, gnu::cold, gnu::noinline]] void throw_rank_exceeded(std::size_t rank) {
  throw ValueError(
      str("shape: rank ", rank, " exceeds the supported maximum of ", Shape::kMaxRank));
}
[[noreturn, gnu::cold, gnu::noinline]] void throw_negative_dim(std::int64_t dim) {
  throw ValueError(str("shape: dimension ", dim, " is negative (only -1, unknown, is allowed)"));
}
void check_rank(std::size_t rank) {
  if (rank > static_cast<std::size_t>(Shape::kMaxRank)) throw_rank_exceeded(rank);
}
void check_dim(std::int64_t dim) {
  if (dim < -1) throw_negative_dim(dim);
}
}  // namespace

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  check_rank(dims.size());
  rank_ = static_cast<int>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    check_dim(dims[i]);
    dims_[i] = dims[i];
  }
}

bool Shape::is_fully_defined() const {
  for (int i = 0; i < rank_; ++i) {
    if (dims_[static_cast<unsigned>(i)] < 0) return false;
  }
  return true;
}

std::int64_t Shape::num_elements() const {
  std::int64_t count = 1;
  bool unknown = false;
  for (int i = 0; i < rank_; ++i) {
    const std::int64_t d = dims_[static_cast<unsigned>(i)];
    if (d < 0) {
      unknown = true;
      continue;
    }
    if (__builtin_mul_overflow(count, d, &count)) {
      throw ValueError(str("shape ", to_string(), " has more elements than fit in int64"));
    }
  }
  return unknown ? -1 : count;
}

void Shape::push_back(std::int64_t dim) { insert(rank_, dim); }

void Shape::insert(int axis, std::int64_t dim) {
  check_rank(static_cast<std::size_t>(rank_) + 1);
  check_dim(dim);
  for (int i = rank_; i > axis; --i)
    dims_[static_cast<unsigned>(i)] = dims_[static_cast<unsigned>(i - 1)];
  dims_[static_cast<unsigned>(axis)] = dim;
  ++rank_;
}

void Shape::erase(int axis) {
  for (int i = axis; i + 1 < rank_; ++i)
    dims_[static_cast<unsigned>(i)] = dims_[static_cast<unsigned>(i + 1)];
  --rank_;
  dims_[static_cast<unsigned>(rank_)] = 0;
}

std::string Shape::to_string() const {
  std::string out = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i > 0) out += ", ";
    const auto d = (*this)[i];
    out += d < 0 ? std::string("?") : std::to_string(d);
  }
  return out + "]";
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape.to_string(); }

int normalize_axis(int axis, int rank, const char* op) {
  const int resolved = axis < 0 ? axis + rank : axis;
  if (resolved < 0 || resolved >= rank) {
    throw ValueError(str(op, ": axis ", axis, " is out of range for rank ", rank,
                         " (valid: ", -rank, " to ", rank - 1, ")"));
  }
  return resolved;
}

}  // namespace ad
