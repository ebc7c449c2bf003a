// float32 convolutions through oneDNN. Primitives are created once per (direction, geometry, chunk
// size) and kept in a process-wide cache, so a training step only executes them. NHWC activations
// are used in place; NCHW ones, and the filter (TF's HWIO), are reordered to the layouts the
// primitive prefers, chunk by chunk, which costs little next to the convolution. Scratch memory is
// per thread and only grows, so a steady state allocates no buffers.
//
// Determinism: oneDNN splits the weight-gradient reduction over the batch by thread, so its sum
// order depends on the thread count. Here the batch is cut into at most kMaxChunks chunks whose
// size depends only on the batch size; each chunk runs a primitive created and executed with one
// thread, and the chunks' filter gradients are added in chunk order (in double). Every result is
// then bitwise the same with any number of threads. The chunks run on the library's thread pool.
//
// Debian's oneDNN is built on OpenMP: it asks OpenMP how many threads to use. The chunk primitives
// are created and run with OpenMP's count set to one on the running thread, so oneDNN never opens
// a parallel region (no libgomp threads, none spinning). Only GRADTAPE_CONV_THREADING=native lets
// oneDNN thread itself, through OpenMP, with ad::num_threads() threads (or the session's count).
#include "autodiff/ops/internal/conv_onednn.h"

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

#include "autodiff/internal/thread_pool.h"

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

// Within its scope, OpenMP (and so oneDNN, which asks OpenMP) sees `threads` threads on this
// thread: one for the deterministic chunks, the library's count in native mode.
class OpenmpThreads {
 public:
  explicit OpenmpThreads(int threads) : saved_(omp_get_max_threads()) {
    if (threads != saved_) omp_set_num_threads(threads);
  }
  ~OpenmpThreads() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  OpenmpThreads(const OpenmpThreads&) = delete;
  OpenmpThreads& operator=(const OpenmpThreads&) = delete;

 private:
  int saved_;
};

// OpenMP's thread count for oneDNN: the library's in native mode, else one.
int onednn_threads(bool native) { return native ? threads_for_loops() : 1; }

// One operand's layout in the caller's memory and in the primitive's, with the reorders between
// them (absent when the layouts agree).
struct Layout {
  memory::desc user, primitive;
  std::optional<dnnl::reorder> to_primitive, to_user;

  Layout(const memory::desc& user_layout, const memory::desc& primitive_layout)
      : user(user_layout), primitive(primitive_layout) {
    if (user == primitive) return;
    const auto& e = cpu_engine();
    to_primitive = dnnl::reorder(dnnl::reorder::primitive_desc(e, user, e, primitive));
    to_user = dnnl::reorder(dnnl::reorder::primitive_desc(e, primitive, e, user));
  }
};

// A primitive with the layouts of its source (or its gradient), weights (or their gradient) and
// destination (or its gradient).
struct Prepared {
  dnnl::primitive primitive;
  Layout src, weights, dst;
  memory::desc scratchpad;
};

memory::desc activations(const OnednnConv& c, std::int64_t batch, std::int64_t channels,
                         std::int64_t height, std::int64_t width, bool any) {
  const Tag tag = any ? Tag::any : c.nchw ? Tag::nchw : Tag::nhwc;
  return {{batch, channels, height, width}, memory::data_type::f32, tag};
}

memory::desc filter(const OnednnConv& c, Tag tag) {
  return {{c.f, c.c, c.kh, c.kw}, memory::data_type::f32, tag};
}

// NHWC activations stay as they are (oneDNN's direct kernels read them); NCHW ones are reordered
// to the blocked layout the primitive picks, since on plain NCHW oneDNN falls back to im2col +
// GEMM.
Prepared create(Direction direction, const OnednnConv& c, std::int64_t batch) {
  namespace d = dnnl;
  const memory::desc user_src = activations(c, batch, c.c, c.h, c.w, false);
  const memory::desc user_dst = activations(c, batch, c.f, c.oh, c.ow, false);
  const memory::desc src = activations(c, batch, c.c, c.h, c.w, c.nchw);
  const memory::desc dst = activations(c, batch, c.f, c.oh, c.ow, c.nchw);
  const memory::desc user_weights = filter(c, Tag::hwio);
  const memory::dims strides{c.sh, c.sw}, dilates{c.dh - 1, c.dw - 1};
  const memory::dims pad_l{c.pt, c.pl}, pad_r{c.pb, c.pr};
  const auto any = filter(c, Tag::any);
  d::primitive_attr attr;
  attr.set_scratchpad_mode(d::scratchpad_mode::user);
  const auto algo = d::algorithm::convolution_direct;
  const d::convolution_forward::desc fwd(d::prop_kind::forward_training, algo, src, any, dst,
                                         strides, dilates, pad_l, pad_r);
  const d::convolution_forward::primitive_desc fwd_pd(fwd, attr, cpu_engine());
  if (direction == Direction::kForward) {
    return {d::convolution_forward(fwd_pd), Layout(user_src, fwd_pd.src_desc()),
            Layout(user_weights, fwd_pd.weights_desc()), Layout(user_dst, fwd_pd.dst_desc()),
            fwd_pd.scratchpad_desc()};
  }
  if (direction == Direction::kBackwardData) {
    const d::convolution_backward_data::desc bwd(algo, src, any, dst, strides, dilates, pad_l,
                                                 pad_r);
    const d::convolution_backward_data::primitive_desc pd(bwd, attr, cpu_engine(), fwd_pd);
    return {d::convolution_backward_data(pd), Layout(user_src, pd.diff_src_desc()),
            Layout(user_weights, pd.weights_desc()), Layout(user_dst, pd.diff_dst_desc()),
            pd.scratchpad_desc()};
  }
  const d::convolution_backward_weights::desc bwd(algo, src, any, dst, strides, dilates, pad_l,
                                                  pad_r);
  const d::convolution_backward_weights::primitive_desc pd(bwd, attr, cpu_engine(), fwd_pd);
  return {d::convolution_backward_weights(pd), Layout(user_src, pd.src_desc()),
          Layout(user_weights, pd.diff_weights_desc()), Layout(user_dst, pd.diff_dst_desc()),
          pd.scratchpad_desc()};
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
                onednn_threads(native)};
  const std::lock_guard lock(mutex);
  auto& entry = cache[key];
  if (!entry) {
    const OpenmpThreads threads(onednn_threads(native));
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

// `data` (an operand in the caller's layout) in the primitive's layout: `data` itself, or its
// reorder into the per-thread buffer `Slot`.
template <int Slot>
void* to_primitive(const Layout& layout, const void* data) {
  if (!layout.to_primitive) return const_cast<void*>(data);  // NOLINT
  void* target = scratch<Slot>(layout.primitive.get_size());
  reorder(*layout.to_primitive, layout.user, data, layout.primitive, target);
  return target;
}

// Where the primitive writes an output that belongs at `data` in the caller's layout; then
// `to_user` moves it there.
template <int Slot>
void* output_buffer(const Layout& layout, void* data) {
  return layout.to_user ? scratch<Slot>(layout.primitive.get_size()) : data;
}
void to_user(const Layout& layout, const void* buffer, void* data) {
  if (layout.to_user) reorder(*layout.to_user, layout.primitive, buffer, layout.user, data);
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

// Calls f(i) for every chunk: across the library's threads, each chunk single-threaded inside,
// or once with oneDNN's own (OpenMP) threading in native mode.
template <class F>
void for_each_chunk(const Chunks& ch, F f) {
  if (ch.native) {
    const OpenmpThreads threads(onednn_threads(true));
    f(std::int64_t{0});
    return;
  }
  parallel_for(ch.count, [&f](std::int64_t first, std::int64_t last) {
    const OpenmpThreads one(1);
    for (std::int64_t i = first; i < last; ++i) f(i);
  });
}

// The filter in the layout of `p`: `w` itself, or its reorder into a per-thread buffer.
template <int Slot>
const void* filter_for(const Prepared& p, const float* w, bool native) {
  const OpenmpThreads threads(onednn_threads(native));
  return to_primitive<Slot>(p.weights, w);
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
  // Named copies rather than a structured binding: clang 14 (the thread-sanitizer build) does not
  // capture structured bindings in lambdas.
  const auto primitives = chunk_primitives(Direction::kForward, c, ch);
  const Prepared* const full = primitives.full;
  const Prepared* const last = primitives.last;
  const void* w_full = filter_for<1>(*full, w, ch.native);
  const void* w_last = last == full ? w_full : filter_for<2>(*last, w, ch.native);
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const bool is_last = i == ch.count - 1;
    const Prepared& p = is_last ? *last : *full;
    float* out = y + ch.first(i) * out_image;
    void* dst = output_buffer<6>(p.dst, out);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC,
         memory(p.src.primitive, e, to_primitive<5>(p.src, x + ch.first(i) * in_image))},
        {DNNL_ARG_WEIGHTS,
         memory(p.weights.primitive, e, const_cast<void*>(is_last ? w_last : w_full))},  // NOLINT
        {DNNL_ARG_DST, memory(p.dst.primitive, e, dst)}};
    run(p.primitive, args, p.scratchpad);
    to_user(p.dst, dst, out);
  });
}

void onednn_conv_backward_data(const OnednnConv& c, const float* w, const float* dy, float* dx) {
  if (c.n == 0) return;
  const Chunks ch = chunks(c.n);
  const auto primitives = chunk_primitives(Direction::kBackwardData, c, ch);
  const Prepared* const full = primitives.full;
  const Prepared* const last = primitives.last;
  const void* w_full = filter_for<1>(*full, w, ch.native);
  const void* w_last = last == full ? w_full : filter_for<2>(*last, w, ch.native);
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const bool is_last = i == ch.count - 1;
    const Prepared& p = is_last ? *last : *full;
    float* out = dx + ch.first(i) * in_image;
    void* diff_src = output_buffer<6>(p.src, out);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_DIFF_DST,
         memory(p.dst.primitive, e, to_primitive<5>(p.dst, dy + ch.first(i) * out_image))},
        {DNNL_ARG_WEIGHTS,
         memory(p.weights.primitive, e, const_cast<void*>(is_last ? w_last : w_full))},  // NOLINT
        {DNNL_ARG_DIFF_SRC, memory(p.src.primitive, e, diff_src)}};
    run(p.primitive, args, p.scratchpad);
    to_user(p.src, diff_src, out);
  });
}

void onednn_conv_backward_weights(const OnednnConv& c, const float* x, const float* dy, float* dw) {
  const std::int64_t size = c.kh * c.kw * c.c * c.f;
  if (c.n == 0) {
    std::fill_n(dw, size, 0.0f);
    return;
  }
  const Chunks ch = chunks(c.n);
  const auto primitives = chunk_primitives(Direction::kBackwardWeights, c, ch);
  const Prepared* const full = primitives.full;
  const Prepared* const last = primitives.last;
  // One HWIO partial per chunk, owned by the calling thread.
  auto* partials =
      static_cast<float*>(scratch<3>(static_cast<std::size_t>(ch.count * size) * sizeof(float)));
  const std::int64_t in_image = c.h * c.w * c.c, out_image = c.oh * c.ow * c.f;
  const auto& e = cpu_engine();
  for_each_chunk(ch, [&](std::int64_t i) {
    const Prepared& p = i == ch.count - 1 ? *last : *full;
    float* partial = ch.count == 1 ? dw : partials + i * size;
    void* target = output_buffer<4>(p.weights, partial);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC,
         memory(p.src.primitive, e, to_primitive<5>(p.src, x + ch.first(i) * in_image))},
        {DNNL_ARG_DIFF_DST,
         memory(p.dst.primitive, e, to_primitive<6>(p.dst, dy + ch.first(i) * out_image))},
        {DNNL_ARG_DIFF_WEIGHTS, memory(p.weights.primitive, e, target)}};
    run(p.primitive, args, p.scratchpad);
    to_user(p.weights, target, partial);
  });
  if (ch.count == 1) return;
  for (std::int64_t j = 0; j < size; ++j) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < ch.count; ++i) sum += static_cast<double>(partials[i * size + j]);
    dw[j] = static_cast<float>(sum);
  }
}

std::size_t onednn_conv_scratch_bytes(const OnednnConv& c, OnednnPass pass) {
  if (c.n == 0) return 0;
  const Chunks ch = chunks(c.n);
  const Direction direction = pass == OnednnPass::kForward        ? Direction::kForward
                              : pass == OnednnPass::kBackwardData ? Direction::kBackwardData
                                                                  : Direction::kBackwardWeights;
  const auto primitives = chunk_primitives(direction, c, ch);
  // A layout the primitive reads or writes through a buffer of its own.
  auto buffer = [](const Layout& l) { return l.to_primitive ? l.primitive.get_size() : 0; };
  std::size_t per_chunk = 0;  // the largest over the full and the last chunk's primitives
  std::size_t filters = 0;    // the filter in each primitive's layout, on the calling thread
  for (const Prepared* p : {primitives.full, primitives.last}) {
    per_chunk =
        std::max(per_chunk, p->scratchpad.get_size() + buffer(p->src) + buffer(p->dst) +
                                (pass == OnednnPass::kBackwardWeights ? buffer(p->weights) : 0));
    if (pass != OnednnPass::kBackwardWeights) filters += buffer(p->weights);
  }
  if (primitives.last == primitives.full) filters /= 2;
  // Threads that hold chunk buffers at once, as for_each_chunk runs them.
  const bool serial = ch.native || ch.count == 1 || omp_in_parallel() || omp_get_max_threads() == 1;
  const auto threads = static_cast<std::size_t>(
      serial ? 1 : std::min<std::int64_t>(ch.count, omp_get_max_threads()));
  const std::size_t partials =
      pass == OnednnPass::kBackwardWeights && ch.count > 1
          ? static_cast<std::size_t>(ch.count * c.kh * c.kw * c.c * c.f) * sizeof(float)
          : 0;
  return threads * per_chunk + filters + partials;
}

}  // namespace ad::detail
