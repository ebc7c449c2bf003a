// Array storage, conversions and printing.
#include "autodiff/array.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <ostream>

#include "autodiff/internal/convert_element.h"
#include "autodiff/internal/storage_stats.h"

// GCC defines __SANITIZE_THREAD__ under -fsanitize=thread; clang reports it through __has_feature.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GRADTAPE_HAS_TSAN_FEATURE 1
#endif
#endif
#ifndef GRADTAPE_HAS_TSAN_FEATURE
#define GRADTAPE_HAS_TSAN_FEATURE 0
#endif

namespace ad {

namespace detail {
namespace {
std::atomic<std::uint64_t> g_allocations{0};
std::atomic<std::size_t> g_bytes_in_use{0};
constexpr std::size_t kAlignment = 64;
}  // namespace

Storage::Storage(std::size_t bytes) : capacity(bytes) {
  const std::size_t rounded =
      std::max<std::size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  // The nothrow form, then std::bad_alloc by hand: AddressSanitizer's throwing operator new ends
  // the process on a failed allocation instead of throwing, even with allocator_may_return_null;
  // its nothrow form returns null, so a huge Array is a ResourceExhaustedError in every build.
  data =
      static_cast<std::byte*>(::operator new (rounded, std::align_val_t{kAlignment}, std::nothrow));
  if (data == nullptr) throw std::bad_alloc();
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_bytes_in_use.fetch_add(capacity, std::memory_order_relaxed);
}

Storage::~Storage() {
  ::operator delete (data, std::align_val_t{kAlignment});
  g_bytes_in_use.fetch_sub(capacity, std::memory_order_relaxed);
}

void acquire_sole_ownership(const std::shared_ptr<Storage>& storage) {
#if defined(__SANITIZE_THREAD__) || GRADTAPE_HAS_TSAN_FEATURE
  const std::shared_ptr<Storage> probe = storage;
#else
  (void)storage;
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

std::uint64_t storage_allocations() { return g_allocations.load(std::memory_order_relaxed); }
std::size_t storage_bytes_in_use() { return g_bytes_in_use.load(std::memory_order_relaxed); }
}  // namespace detail

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int64:
      return "int64";
    case DType::Bool:
      return "bool";
    case DType::Int32:
      return "int32";
    case DType::UInt8:
      return "uint8";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::Float32:
    case DType::Int32:
      return 4;
    case DType::Float64:
    case DType::Int64:
      return 8;
    case DType::Bool:
    case DType::UInt8:
      return 1;
  }
  return 1;
}

std::ostream& operator<<(std::ostream& out, DType dtype) { return out << dtype_name(dtype); }

namespace {
std::int64_t checked_size(const Shape& shape, const char* what) {
  if (!shape.is_fully_defined()) {
    throw ValueError(str(what, ": shape ", shape, " has unknown dimensions"));
  }
  return shape.num_elements();
}

// A new storage block of `bytes` for `dtype``shape`; an allocation failure (std::bad_alloc from the
// block or its control block) becomes ResourceExhaustedError naming the shape and the bytes, as it
// does inside a Session run.
std::shared_ptr<detail::Storage> allocate(std::size_t bytes, DType dtype, const Shape& shape,
                                          std::string_view what) {
  try {
    return std::make_shared<detail::Storage>(bytes);
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(
        str(what, ": out of memory allocating ", bytes, " bytes for ", dtype, shape));
  }
}

template <class F>
void visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32:
      f(float{});
      break;
    case DType::Float64:
      f(double{});
      break;
    case DType::Int64:
      f(std::int64_t{});
      break;
    case DType::Bool:
      f(bool{});
      break;
    case DType::Int32:
      f(std::int32_t{});
      break;
    case DType::UInt8:
      f(std::uint8_t{});
      break;
  }
}
}  // namespace

Array::Array() = default;

Array::Array(DType dtype, const Shape& shape) : Array(uninitialized(dtype, shape)) {
  if (storage_) std::memset(storage_->data, 0, nbytes());
}

Array::Array(DType dtype, const Shape& shape, std::shared_ptr<detail::Storage> storage)
    : dtype_(dtype),
      shape_(shape),
      size_(checked_size(shape, "Array")),
      storage_(std::move(storage)) {
  if (nbytes() > 0 && (!storage_ || storage_->capacity < nbytes())) {
    throw InternalError(str("Array: storage too small for ", dtype, shape));
  }
}

Array Array::uninitialized(DType dtype, const Shape& shape) {
  const std::int64_t n = checked_size(shape, "Array");
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::size_t>(n), dtype_size(dtype), &bytes)) {
    throw ValueError(
        str("Array: shape ", shape, " of ", dtype, " needs more bytes than fit in memory"));
  }
  return Array(dtype, shape, n == 0 ? nullptr : allocate(bytes, dtype, shape, "Array"));
}

Array Array::full(DType dtype, const Shape& shape, double value) {
  Array a = uninitialized(dtype, shape);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto out = a.mutable_data<T>();
    std::fill(out.begin(), out.end(), detail::convert_element<T>(value));
  });
  return a;
}

void* Array::raw_mutable_data() {
  if (storage_ && storage_.use_count() > 1) {
    auto copy = allocate(nbytes(), dtype_, shape_, "Array (copy before write)");
    std::memcpy(copy->data, storage_->data, nbytes());
    storage_ = std::move(copy);
  } else {
    // Another thread may have just dropped its reference (a session reading a variable that this
    // thread now updates in place): order its reads before our writes.
    detail::acquire_sole_ownership(storage_);
  }
  return storage_ ? storage_->data : nullptr;
}

void Array::check_type(DType requested) const {
  if (requested != dtype_) {
    throw ValueError(
        str("Array: elements requested as ", requested, " but the array holds ", dtype_));
  }
}

double Array::flat(std::int64_t i) const {
  if (i < 0 || i >= size_) throw OutOfRangeError(str("Array: index ", i, " is outside ", shape_));
  double value = 0;
  visit_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    value = static_cast<double>(reinterpret_cast<const T*>(raw_data())[i]);
  });
  return value;
}

double Array::at(std::initializer_list<std::int64_t> index) const {
  if (static_cast<int>(index.size()) != rank()) {
    throw OutOfRangeError(
        str("Array::at: ", index.size(), " indices for an array of shape ", shape_));
  }
  std::int64_t offset = 0;
  int axis = 0;
  for (const auto i : index) {
    if (i < 0 || i >= shape_[axis])
      throw OutOfRangeError(str("Array::at: index ", i, " on axis ", axis, " of ", shape_));
    offset = offset * shape_[axis] + i;
    ++axis;
  }
  return flat(offset);
}

Array Array::reshaped(const Shape& shape) const {
  if (checked_size(shape, "Array::reshaped") != size_) {
    throw ValueError(str("Array::reshaped: cannot view ", shape_, " as ", shape));
  }
  return Array(dtype_, shape, storage_);
}

Array Array::astype(DType dtype) const {
  if (dtype == dtype_) return *this;
  Array out = uninitialized(dtype, shape_);
  visit_dtype(dtype_, [&](auto from_tag) {
    using From = decltype(from_tag);
    const auto in = data<From>();
    visit_dtype(dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      auto dst = out.mutable_data<To>();
      for (std::size_t i = 0; i < in.size(); ++i) dst[i] = detail::convert_element<To>(in[i]);
    });
  });
  return out;
}

Array Array::clone() const {
  Array out = uninitialized(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(out.storage_->data, raw_data(), nbytes());
  return out;
}

bool Array::bitwise_equal(const Array& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         (nbytes() == 0 || std::memcmp(raw_data(), other.raw_data(), nbytes()) == 0);
}

std::string Array::to_string(std::int64_t max_elements) const {
  std::ostringstream out;
  out << dtype_ << shape_ << ' ';
  if (rank() == 0) {
    if (size_ == 1) out << flat(0);
    return out.str();
  }
  // Nested brackets; elements past max_elements are elided with "...".
  std::int64_t printed = 0;
  std::vector<std::int64_t> index(static_cast<std::size_t>(rank()), 0);
  const std::int64_t total = size_;
  for (int d = 0; d < rank(); ++d) out << '[';
  for (std::int64_t i = 0; i < total; ++i) {
    if (printed == max_elements) {
      out << "...";
      break;
    }
    out << flat(i);
    ++printed;
    int closed = 0;
    for (int d = rank() - 1; d >= 0; --d) {
      if (++index[static_cast<std::size_t>(d)] < shape_[d]) break;
      index[static_cast<std::size_t>(d)] = 0;
      ++closed;
    }
    for (int c = 0; c < closed; ++c) out << ']';
    if (i + 1 < total) {
      out << ", ";
      for (int c = 0; c < closed; ++c) out << '[';
    }
  }
  if (printed == max_elements && total > max_elements) {
    for (int d = 0; d < rank(); ++d) out << ']';
  }
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Array& array) { return out << array.to_string(); }

}  // namespace ad
