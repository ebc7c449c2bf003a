// KernelContext: output allocation from the pool and errors naming the node.
#include "autodiff/kernel.h"

#include <limits>
#include <new>

namespace ad {

Array& KernelContext::allocate_output(int i, const Shape& shape) {
  const auto& spec = node_.outputs[static_cast<std::size_t>(i)];
  if (!spec.shape.is_compatible_with(shape)) {
    throw InternalError(str(node_.op->name, " '", node_.name, "': output ", i, " has shape ", shape,
                            " but the graph promised ", spec.shape));
  }
  const std::int64_t n = shape.num_elements();
  const std::size_t element = dtype_size(spec.dtype);
  if (static_cast<std::size_t>(n) > std::numeric_limits<std::size_t>::max() / element) {
    throw ResourceExhaustedError(str(node_.op->name, " '", node_.name, "': output ", spec.dtype,
                                     shape, " has more bytes than memory can address"));
  }
  const std::size_t bytes = static_cast<std::size_t>(n) * element;
  Array& slot = slots_[output_base_ + i];
  try {
    slot = Array(spec.dtype, shape, bytes == 0 ? nullptr : pool_.acquire(bytes));
  } catch (const ResourceExhaustedError& e) {
    throw ResourceExhaustedError(
        str(node_.op->name, " '", node_.name, "': output ", spec.dtype, shape, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(node_.op->name, " '", node_.name, "': output ", spec.dtype,
                                     shape, ": out of memory allocating ", bytes, " bytes"));
  }
  produced_[output_base_ + i] = 1;
  return slot;
}

Scratch KernelContext::scratch_buffer(std::int64_t count, std::size_t element_size,
                                      std::string_view what) {
  if (count <= 0) return {pool_, nullptr};
  if (static_cast<std::size_t>(count) > std::numeric_limits<std::size_t>::max() / element_size) {
    throw ResourceExhaustedError(str(node_.op->name, " '", node_.name, "': scratch for ", what,
                                     " of ", count, " elements is more than memory can address"));
  }
  const std::size_t bytes = static_cast<std::size_t>(count) * element_size;
  try {
    return {pool_, pool_.acquire(bytes)};
  } catch (const ResourceExhaustedError& e) {
    throw ResourceExhaustedError(
        str(node_.op->name, " '", node_.name, "': scratch for ", what, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    throw ResourceExhaustedError(str(node_.op->name, " '", node_.name, "': scratch for ", what,
                                     ": out of memory allocating ", bytes, " bytes"));
  }
}

BudgetReservation KernelContext::reserve_scratch(std::size_t bytes, std::string_view what) {
  try {
    return pool_.reserve(bytes);
  } catch (const ResourceExhaustedError& e) {
    throw ResourceExhaustedError(
        str(node_.op->name, " '", node_.name, "': scratch for ", what, ": ", e.what()));
  }
}

void KernelContext::set_output(int i, Array value) {
  const auto& spec = node_.outputs[static_cast<std::size_t>(i)];
  if (value.dtype() != spec.dtype || !spec.shape.is_compatible_with(value.shape())) {
    throw InternalError(str(node_.op->name, " '", node_.name, "': output ", i, " is ",
                            value.dtype(), value.shape(), " but the graph promised ", spec.dtype,
                            spec.shape));
  }
  slots_[output_base_ + i] = std::move(value);
  produced_[output_base_ + i] = 1;
}

void KernelContext::fail(std::string_view what) const {
  throw InvalidArgumentError(str(node_.op->name, " '", node_.name, "': ", what));
}

}  // namespace ad
