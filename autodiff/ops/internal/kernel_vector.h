// Internal: std::vector for the kernels' scratch buffers, with an allocator of the instruction
// set's own namespace (see isa_dispatch.h). A std::vector<double> in an AVX-512 kernel would share
// its symbols with every other std::vector<double> of the library, and the linker could keep the
// AVX-512 copy for all of them; KernelVector<double> is a type of its own per set.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#include "autodiff/ops/internal/isa_dispatch.h"

namespace ad::detail {
inline namespace GRADTAPE_KERNEL_NS {

template <class T>
struct KernelAllocator {
  using value_type = T;
  KernelAllocator() = default;
  template <class U>
  explicit KernelAllocator(const KernelAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t /*n*/) { ::operator delete(p); }
  friend bool operator==(const KernelAllocator&, const KernelAllocator&) { return true; }
};

template <class T>
using KernelVector = std::vector<T, KernelAllocator<T>>;

}  // namespace GRADTAPE_KERNEL_NS
}  // namespace ad::detail
