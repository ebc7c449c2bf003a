// KernelContext: output allocation from the pool and errors naming the node.
#include "autodiff/kernel.h"

namespace ad {

Array& KernelContext::allocate_output(int i, const Shape& shape) {
  const auto& spec = node_.outputs[static_cast<std::size_t>(i)];
  if (!spec.shape.is_compatible_with(shape)) {
    throw InternalError(str(node_.op->name, " '", node_.name, "': output ", i, " has shape ", shape,
                            " but the graph promised ", spec.shape));
  }
  const std::int64_t n = shape.num_elements();
  const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(spec.dtype);
  Array& slot = slots_[output_base_ + i];
  try {
    slot = Array(spec.dtype, shape, bytes == 0 ? nullptr : pool_.acquire(bytes));
  } catch (const ResourceExhaustedError& e) {
    throw ResourceExhaustedError(
        str(node_.op->name, " '", node_.name, "': output ", spec.dtype, shape, ": ", e.what()));
  }
  produced_[output_base_ + i] = 1;
  return slot;
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
