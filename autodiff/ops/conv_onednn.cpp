// float32 convolutions through oneDNN. Primitives are created once per (direction, geometry, chunk
// size) and kept in a process-wide cache, so a training step only executes them. Activations stay
// in the caller's plain layout (NHWC or NCHW); the filter is reordered from TF's HWIO to the
// layout the primitive prefers (and the filter gradient back), which costs little next to the
// convolution. Scratch memory is per thread and only grows, so a steady state allocates no
// buffers.
//
// Determinism: oneDNN splits the weight-gradient reduction over the batch by thread, so its sum
// order depends on the thread count. Here the batch is cut into at most kMaxChunks chunks whose
// size depends only on the batch size; each chunk runs a primitive created and executed with one
// thread, and the chunks' filter gradients are added in chunk order (in double). Every result is
// then bitwise the same with any number of OpenMP threads.
#include "autodiff/ops/conv_onednn.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ad::detail {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

constexpr std::int64_t kMaxChunks = 8;

enum class Direction : std::int64_t { kForward, kBackwardData, kBackwardWeights };

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Within its scope, OpenMP (and so oneDNN, which asks OpenMP) sees one thread on this thread.
class SingleThreaded {
 public:
  explicit SingleThreaded(bool active) : saved_(active ? omp_get_max_threads() : 0) {
    if (active) omp_set_num_threads(1);
  }
  ~SingleThreaded() {
    if (saved_ > 0) omp_set_num_threads(saved_);
  }
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int saved_;
};

// A primitive with the memory layouts it was created for.
struct Prepared {
  dnnl::primitive primitive;
  memory::desc src, weights, dst, user_weights, scratchpad;
  // user HWIO -> the primitive's weights (forward, backward data), or the primitive's weight
  // gradient -> HWIO (backward weights); empty when the layouts agree.
  std::optional<dnnl::reorder> reorder;
};

memory::desc activations(const OnednnConv& c, std::int64_t batch, std::int64_t channels,
                         std::int64_t height, std::int64_t width) {
  return {{batch, channels, height, width}, memory::data_type::f32, c.nchw ? Tag::nchw : Tag::nhwc};
}

memory::desc filter(const OnednnConv& c, Tag tag) {
  return {{c.f, c.c, c.kh, c.kw}, memory::data_type::f32, tag};
}

void finish(Prepared& p, dnnl::primitive primitive, const dnnl::primitive_desc& pd,
            const memory::desc& weights, bool to_user) {
  p.primitive = std::move(primitive);
  p.weights = weights;
  p.scratchpad = pd.scratchpad_desc();
  if (weights != p.user_weights) {
    const auto& e = cpu_engine();
    p.reorder = to_user
                    ? dnnl::reorder(dnnl::reorder::primitive_desc(e, weights, e, p.user_weights))
                    : dnnl::reorder(dnnl::reorder::primitive_desc(e, p.user_weights, e, weights));
  }
}

Prepared create(Direction direction, const OnednnConv& c, std::int64_t batch) {
  namespace d = dnnl;
  Prepared p;
  p.src = activations(c, batch, c.c, c.h, c.w);
  p.dst = activations(c, batch, c.f, c.oh, c.ow);
  p.user_weights = filter(c, Tag::hwio);
  const memory::dims strides{c.sh, c.sw}, dilates{c.dh - 1, c.dw - 1};
  const memory::dims pad_l{c.pt, c.pl}, pad_r{c.pb, c.pr};
  const auto any = filter(c, Tag::any);
  d::primitive_attr attr;
  attr.set_scratchpad_mode(d::scratchpad_mode::user);
  const auto algo = d::algorithm::convolution_direct;
  const d::convolution_forward::desc fwd(d::prop_kind::forward_training, algo, p.src, any, p.dst,
                                         strides, dilates, pad_l, pad_r);
  const d::convolution_forward::primitive_desc fwd_pd(fwd, attr, cpu_engine());
  if (direction == Direction::kForward) {
    finish(p, d::convolution_forward(fwd_pd), fwd_pd, fwd_pd.weights_desc(), false);
  } else if (direction == Direction::kBackwardData) {
    const d::convolution_backward_data::desc bwd(algo, p.src, any, p.dst, strides, dilates, pad_l,
                                                 pad_r);
    const d::convolution_backward_data::primitive_desc pd(bwd, attr, cpu_engine(), fwd_pd);
    finish(p, d::convolution_backward_data(pd), pd, pd.weights_desc(), false);
  } else {
    const d::convolution_backward_weights::desc bwd(algo, p.src, any, p.dst, strides, dilates,
                                                    pad_l, pad_r);
    const d::convolution_backward_weights::primitive_desc pd(bwd, attr, cpu_engine(), fwd_pd);
    finish(p, d::convolution_backward_weights(pd), pd, pd.diff_weights_desc(), true);
  }
  return p;
}

// The cached primitive for `direction` over `batch` images of `c`. Native primitives depend on
// the thread count they were created with, so it is part of their key.
const Prepared& prepared(Direction direction, const OnednnConv& c, std::int64_t batch,
                         bool native) {
  using Key = std::array<std::int64_t, 21>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<const Prepared>> cache;
  const Key key{static_cast<std::int64_t>(direction),
                batch,
                c.h,
                c.w,
                c.c,
                c.kh,
                c.kw,
                c.f,
                c.oh,
                c.ow,
                c.sh,
                c.sw,
                c.dh,
                c.dw,
                c.pt,
                c.pl,
                c.pb,
                c.pr,
                c.nchw ? 1 : 0,
                native ? 1 : 0,
                native ? omp_get_max_threads() : 1};
  const std::lock_guard lock(mutex);
  auto& entry = cache[key];
  if (!entry) {
    const SingleThreaded one(!native);
    entry = std::make_unique<const Prepared>(create(direction, c, batch));
  }
  return *entry;
}

// A per-thread buffer of at least `bytes` that only grows; `Slot` tells apart buffers in use at
// the same time.
template <int Slot>
void* scratch(std::size_t bytes) {
  struct alignas(64) CacheLine {
    std::byte bytes[64];
  };
  thread_local std::vector<CacheLine> buffer;
  const std::size_t elements = (bytes + sizeof(CacheLine) - 1) / sizeof(CacheLine);
  if (buffer.size() < elements) buffer.resize(elements);
  return buffer.data();
}

void run(const dnnl::primitive& primitive, std::unordered_map<int, memory>& args,
         const memory::desc& scratchpad) {
  const auto& e = cpu_engine();
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, e, scratch<0>(scratchpad.get_size())));
  thread_local dnnl::stream stream(e);
  primitive.execute(stream, args);
  stream.wait();
}

void reorder(const dnnl::reorder& r, const memory::desc& from, const void* source,
             const memory::desc& to, void* target) {
  const auto& e = cpu_engine();
  memory in(from, e, const_cast<void*>(source));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  memory out(to, e, target);
  thread_local dnnl::stream stream(e);
  r.execute(stream, in, out);
  stream.wait();
}

// How a batch of n images is cut: chunks of `size` images, the last one possibly smaller.
struct Chunks {
  std::int64_t n = 0, size = 0, count = 0;
  bool native = false;
  [[nodiscard]] std::int64_t first(std::int64_t i) const { return i * size; }
  [[nodiscard]] std::int64_t images(std::int64_t i) const { return std::min(size, n - i * size); }
};

Chunks chunks(std::int64_t n) {
  const bool native = onednn_threading() == OnednnThreading::kNative;
  const std::int64_t size = native ? n : (n + kMaxChunks - 1) / kMaxChunks;
  return {n, size, (n + size - 1) / size, native};
}

// Calls f(i) for every chunk: across the OpenMP threads, each chunk single-threaded inside, or
// once with oneDNN's own threading in native mode.
template <class F>
void for_each_chunk(const Chunks& ch, F f) {
  if (ch.native) {
    f(std::int64_t{0});
    return;
  }
  if (ch.count == 1 || omp_in_parallel() || omp_get_max_threads() == 1) {
    const SingleThreaded one(true);
    for (std::int64_t i = 0; i < ch.count; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < ch.count; ++i) {
    const SingleThreaded one(true);
    f(i);
  }
}

// The filter in the layout of `p`: `w` itself, or its reorder into a per-thread buffer.
template <int Slot>
const void* filter_for(const Prepared& p, const float* w, bool native) {
  if (!p.reorder) return w;
  void* target = scratch<Slot>(p.weights.get_size());
  const SingleThreaded one(!native);
  reorder(*p.reorder, p.user_weights, w, p.weights, target);
  return target;
}

// The full-size and the last chunk's primitives (the same when every chunk is full).
struct ChunkPrimitives {
  const Prepared* full;
  const Prepared* last;
};

ChunkPrimitives chunk_primitives(Direction direction, const OnednnConv& c, const Chunks& ch) {
  const Prepared& full = prepared(direction, c, ch.size, ch.native);
  const std::int64_t tail = ch.images(ch.count - 1);
  return {&full, tail == ch.size ? &full : &prepared(direction, c, tail, ch.native)};
}

}  // namespace

OnednnThreading onednn_threading() {
  static const OnednnThreading mode = [] {
    const char* value = std::getenv("GRADTAPE_CONV_THREADING");
    return value != nullptr && std::string_view(value) == "native"
               ? OnednnThreading::kNative
               : OnednnThreading::kDeterministic;
  }();
  return mode;
}

void onednn_conv_forward(const OnednnConv& c, const float* x, const float* w, float* y) {
  if (c.n == 0) return;
  const Chunks ch = chunks(c.n);
  const auto [full, last] = chunk_primitives(Direction::kForward, c, ch);
  const void* w_full = filter_for<1>(*full, w, ch.native);
  const void* w_last = last == full ? w_full : filter_for<2>(*last, w, ch.native);
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const bool is_last = i == ch.count - 1;
    const Prepared& p = is_last ? *last : *full;
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(p.src, e, const_cast<float*>(x + ch.first(i) * in_image))},  // NOLINT
        {DNNL_ARG_WEIGHTS, memory(p.weights, e, const_cast<void*>(is_last ? w_last : w_full))},
        {DNNL_ARG_DST, memory(p.dst, e, y + ch.first(i) * out_image)}};
    run(p.primitive, args, p.scratchpad);
  });
}

void onednn_conv_backward_data(const OnednnConv& c, const float* w, const float* dy, float* dx) {
  if (c.n == 0) return;
  const Chunks ch = chunks(c.n);
  const auto [full, last] = chunk_primitives(Direction::kBackwardData, c, ch);
  const void* w_full = filter_for<1>(*full, w, ch.native);
  const void* w_last = last == full ? w_full : filter_for<2>(*last, w, ch.native);
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const bool is_last = i == ch.count - 1;
    const Prepared& p = is_last ? *last : *full;
    std::unordered_map<int, memory> args{
        {DNNL_ARG_DIFF_DST,
         memory(p.dst, e, const_cast<float*>(dy + ch.first(i) * out_image))},  // NOLINT
        {DNNL_ARG_WEIGHTS, memory(p.weights, e, const_cast<void*>(is_last ? w_last : w_full))},
        {DNNL_ARG_DIFF_SRC, memory(p.src, e, dx + ch.first(i) * in_image)}};
    run(p.primitive, args, p.scratchpad);
  });
}

void onednn_conv_backward_weights(const OnednnConv& c, const float* x, const float* dy, float* dw) {
  const std::int64_t size = c.kh * c.kw * c.c * c.f;
  if (c.n == 0) {
    std::fill_n(dw, size, 0.0f);
    return;
  }
  const Chunks ch = chunks(c.n);
  const auto [full, last] = chunk_primitives(Direction::kBackwardWeights, c, ch);
  // One HWIO partial per chunk, owned by the calling thread.
  auto* partials =
      static_cast<float*>(scratch<3>(static_cast<std::size_t>(ch.count * size) * sizeof(float)));
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const Prepared& p = i == ch.count - 1 ? *last : *full;
    float* partial = ch.count == 1 ? dw : partials + i * size;
    void* target = p.reorder ? scratch<4>(p.weights.get_size()) : partial;
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(p.src, e, const_cast<float*>(x + ch.first(i) * in_image))},  // NOLINT
        {DNNL_ARG_DIFF_DST,
         memory(p.dst, e, const_cast<float*>(dy + ch.first(i) * out_image))},  // NOLINT
        {DNNL_ARG_DIFF_WEIGHTS, memory(p.weights, e, target)}};
    run(p.primitive, args, p.scratchpad);
    if (p.reorder) reorder(*p.reorder, p.weights, target, p.user_weights, partial);
  });
  if (ch.count == 1) return;
  for (std::int64_t j = 0; j < size; ++j) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < ch.count; ++i) sum += static_cast<double>(partials[i * size + j]);
    dw[j] = static_cast<float>(sum);
  }
}

}  // namespace ad::detail
