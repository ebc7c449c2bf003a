// ad::Array: a concrete n-d value (dtype, shape, contiguous row-major storage, 64-byte aligned).
//
// Copies share storage, so copying an Array is cheap; `mutable_data` copies the storage first when
// it is shared (copy-on-write), so writing through one copy never changes another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/error.h"
#include "gradtape/autodiff/shape.h"

namespace ad {

namespace detail {
// An aligned block of bytes owned by Arrays; `capacity` may exceed what an Array uses. Declared
// here because Array's inline accessors read it; only the session's buffer pool makes one.
struct Storage {
  explicit Storage(std::size_t bytes);
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Storage(Storage&&) = delete;
  Storage& operator=(Storage&&) = delete;
  ~Storage();
  std::byte* data;
  std::size_t capacity;
};
}  // namespace detail

class Array {
 public:
  // An empty Float32 array of shape [0]: the value of a fetched op that has no outputs.
  Array();
  // A zero-filled array. The shape must be fully defined. Every constructor and factory that
  // allocates throws ResourceExhaustedError (naming the shape and the bytes) when memory runs out,
  // never std::bad_alloc.
  Array(DType dtype, const Shape& shape);
  // Shares `storage` (used by the session's buffer pool); no bytes are copied.
  Array(DType dtype, const Shape& shape, std::shared_ptr<detail::Storage> storage);

  template <class T>
  [[nodiscard]] static Array from(std::span<const T> values, const Shape& shape) {
    Array a = uninitialized(dtype_of<T>(), shape);
    if (static_cast<std::int64_t>(values.size()) != a.size()) {
      throw ValueError(str("Array::from: ", values.size(), " values do not fill shape ", shape,
                           " (", a.size(), " elements)"));
    }
    std::copy(values.begin(), values.end(), a.mutable_data<T>().begin());
    return a;
  }
  template <class T>
  [[nodiscard]] static Array from(const std::vector<T>& values, const Shape& shape) {
    if constexpr (std::is_same_v<T, bool>) {
      const std::vector<char> bytes(values.begin(), values.end());
      Array a = uninitialized(DType::Bool, shape);
      if (static_cast<std::int64_t>(bytes.size()) != a.size()) {
        throw ValueError(str("Array::from: ", bytes.size(), " values do not fill shape ", shape));
      }
      auto out = a.mutable_data<bool>();
      for (std::size_t i = 0; i < bytes.size(); ++i) out[i] = bytes[i] != 0;
      return a;
    } else {
      return from(std::span<const T>(values), shape);
    }
  }
  template <class T>
  [[nodiscard]] static Array from(std::initializer_list<T> values, const Shape& shape) {
    return from(std::span<const T>(values.begin(), values.size()), shape);
  }
  // A 1-D array holding `values`.
  template <class T>
  [[nodiscard]] static Array vector(const std::vector<T>& values) {
    return from(values, Shape{static_cast<std::int64_t>(values.size())});
  }
  template <class T>
  [[nodiscard]] static Array scalar(T value) {
    return from(std::span<const T>(&value, 1), Shape{});
  }
  // An array whose elements are all `value` converted to `dtype`.
  [[nodiscard]] static Array full(DType dtype, const Shape& shape, double value);
  // An array of unspecified contents (kernels overwrite every element).
  [[nodiscard]] static Array uninitialized(DType dtype, const Shape& shape);

  [[nodiscard]] DType dtype() const { return dtype_; }
  [[nodiscard]] const Shape& shape() const { return shape_; }
  [[nodiscard]] int rank() const { return shape_.rank(); }
  [[nodiscard]] std::int64_t size() const { return size_; }
  [[nodiscard]] std::size_t nbytes() const {
    return static_cast<std::size_t>(size_) * dtype_size(dtype_);
  }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  // The elements, read-only. Throws ValueError when T does not match dtype().
  template <class T>
  [[nodiscard]] std::span<const T> data() const {
    check_type(dtype_of<T>());
    return {reinterpret_cast<const T*>(raw_data()), static_cast<std::size_t>(size_)};
  }
  // The elements, writable; copies the storage first when another Array shares it.
  template <class T>
  [[nodiscard]] std::span<T> mutable_data() {
    check_type(dtype_of<T>());
    return {reinterpret_cast<T*>(raw_mutable_data()), static_cast<std::size_t>(size_)};
  }
  // The single element of a one-element array.
  template <class T>
  [[nodiscard]] T item() const {
    if (size_ != 1)
      throw ValueError(str("Array::item: array of shape ", shape_, " is not a single value"));
    return data<T>()[0];
  }
  // Element at a multi-index, converted to double (any dtype); for tests and debugging.
  [[nodiscard]] double at(std::initializer_list<std::int64_t> index) const;
  // Element i of the flat data, converted to double.
  [[nodiscard]] double flat(std::int64_t i) const;

  [[nodiscard]] const void* raw_data() const { return storage_ ? storage_->data : nullptr; }
  [[nodiscard]] void* raw_mutable_data();

  // The same elements under another shape with the same element count; shares storage.
  [[nodiscard]] Array reshaped(const Shape& shape) const;
  // A converted copy (or this array when the dtype already matches).
  [[nodiscard]] Array astype(DType dtype) const;
  // A deep copy that shares nothing.
  [[nodiscard]] Array clone() const;
  [[nodiscard]] bool shares_storage_with(const Array& other) const {
    return storage_ && storage_ == other.storage_;
  }
  // True when the dtypes, shapes and every bit of the elements are the same.
  [[nodiscard]] bool bitwise_equal(const Array& other) const;

  // A readable dump, eliding the middle of long arrays: "float32[2, 2] [[1, 2], [3, 4]]".
  [[nodiscard]] std::string to_string(std::int64_t max_elements = 64) const;

  // Internals for the session's buffer pool.
  [[nodiscard]] const std::shared_ptr<detail::Storage>& storage() const { return storage_; }
  [[nodiscard]] std::shared_ptr<detail::Storage> release_storage() { return std::move(storage_); }

 private:
  void check_type(DType requested) const;

  DType dtype_ = DType::Float32;
  Shape shape_{0};
  std::int64_t size_ = 0;
  std::shared_ptr<detail::Storage> storage_;
};

std::ostream& operator<<(std::ostream& out, const Array& array);

}  // namespace ad
