// Channel layouts for the per-channel kernels (see channel_stats.h).
#include "autodiff/ops/internal/channel_stats.h"

#include <algorithm>

#include "autodiff/error.h"

namespace ad::detail {

std::vector<int> resolve_channel_axes(const std::vector<int>& axes, int rank, const char* op) {
  std::vector<int> out;
  for (int a : axes) {
    const int r = normalize_axis(a, rank, op);
    if (std::find(out.begin(), out.end(), r) != out.end())
      throw ValueError(str(op, ": axis ", a, " is repeated"));
    out.push_back(r);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& reduction_axes) {
  Shape s = shape;
  for (int a : reduction_axes) s[a] = 1;
  return s;
}

std::int64_t streaming_threshold_bytes() { return std::int64_t{16} << 20; }

ChannelLayout channel_layout(const Shape& shape, const std::vector<int>& reduction_axes) {
  std::vector<char> kept(static_cast<std::size_t>(shape.rank()), 1);
  for (int a : reduction_axes) kept[static_cast<std::size_t>(a)] = 0;
  int first = -1;
  int last = -1;
  for (int d = 0; d < shape.rank(); ++d) {
    if (kept[static_cast<std::size_t>(d)] && shape[d] != 1) {
      if (first < 0) first = d;
      last = d;
    }
  }
  ChannelLayout layout;
  if (first < 0) {  // a single channel
    layout.inner = shape.num_elements();
    return layout;
  }
  for (int d = 0; d < shape.rank(); ++d) {
    const auto dim = shape[d];
    if (d < first) {
      layout.outer *= dim;
    } else if (d > last) {
      layout.inner *= dim;
    } else {
      layout.channels *= dim;
      if (!kept[static_cast<std::size_t>(d)] && dim != 1) layout.contiguous = false;
    }
  }
  return layout;
}

// Channel index of every element, for layouts whose kept axes are not contiguous.
std::vector<std::int64_t> channel_index(const Shape& shape,
                                        const std::vector<int>& reduction_axes) {
  std::vector<char> kept(static_cast<std::size_t>(shape.rank()), 1);
  for (int a : reduction_axes) kept[static_cast<std::size_t>(a)] = 0;
  const auto n = static_cast<std::size_t>(shape.num_elements());
  std::vector<std::int64_t> channel(n);
  std::vector<std::int64_t> index(static_cast<std::size_t>(shape.rank()), 0);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t c = 0;
    for (int d = 0; d < shape.rank(); ++d) {
      if (kept[static_cast<std::size_t>(d)]) c = c * shape[d] + index[static_cast<std::size_t>(d)];
    }
    channel[i] = c;
    for (int d = shape.rank() - 1; d >= 0; --d) {
      if (++index[static_cast<std::size_t>(d)] < shape[d]) break;
      index[static_cast<std::size_t>(d)] = 0;
    }
  }
  return channel;
}

}  // namespace ad::detail
