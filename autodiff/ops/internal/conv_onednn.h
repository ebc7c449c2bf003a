// Internal: float32 2-D convolutions (forward, backward data, backward weights) through oneDNN.
// Only conv_onednn.cpp includes oneDNN's headers; this header holds no oneDNN type, so the library
// stays out of every other translation unit and of the public headers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ad::detail {

// One convolution in TF's terms: input [n, h, w, c] (or [n, c, h, w] when nchw), filter
// [kh, kw, c, f] (TF's HWIO), output [n, oh, ow, f] (or [n, f, oh, ow]); padding before (pt, pl)
// and after (pb, pr) the image, as conv_window computes it.
struct OnednnConv {
  std::int64_t n = 0, h = 0, w = 0, c = 0, kh = 0, kw = 0, f = 0, oh = 0, ow = 0;
  std::int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  bool nchw = false;
};

// How the kernels use threads. kDeterministic (the default) cuts the batch into chunks fixed by
// the shape, runs one single-threaded oneDNN primitive per chunk across the OpenMP threads and
// adds the chunks' weight gradients in chunk order, so results are bitwise the same with any
// thread count. kNative runs one primitive over the whole batch with oneDNN's own threading:
// faster at the margin, but its weight-gradient reduction depends on the thread count. The mode
// is read once from the environment variable GRADTAPE_CONV_THREADING ("native" selects kNative).
enum class OnednnThreading { kDeterministic, kNative };
[[nodiscard]] OnednnThreading onednn_threading();

// y = conv(x, w); dx = the gradient with respect to x; dw = the gradient with respect to w.
// Pointers address contiguous arrays of the shapes above.
void onednn_conv_forward(const OnednnConv& conv, const float* x, const float* w, float* y);
void onednn_conv_backward_data(const OnednnConv& conv, const float* w, const float* dy, float* dx);
void onednn_conv_backward_weights(const OnednnConv& conv, const float* x, const float* dy,
                                  float* dw);

// The bytes of buffers one call of `pass` over `conv` uses besides its operands (oneDNN's
// scratchpad, operands reordered to the primitive's layouts, per-chunk weight gradients), over
// every thread that runs a chunk: what a session's memory cap counts while the call runs.
enum class OnednnPass { kForward, kBackwardData, kBackwardWeights };
[[nodiscard]] std::size_t onednn_conv_scratch_bytes(const OnednnConv& conv, OnednnPass pass);

}  // namespace ad::detail
