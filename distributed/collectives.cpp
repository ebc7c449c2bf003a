// Kernels and gradients of the collective ops; the transfers are in communicator.cpp.
#include "distributed/collectives.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/error.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/basic.h"
#include "distributed/communicator.h"

namespace ad::distributed {
namespace {

using detail::Bytes;

struct ReduceAttrs {
  ReduceOp op;
};
struct BroadcastAttrs {
  int root;
};

void put(Bytes& bytes, std::int64_t value) {
  const std::size_t at = bytes.size();
  bytes.resize(at + sizeof value);
  std::memcpy(bytes.data() + at, &value, sizeof value);
}

std::int64_t get(const Bytes& bytes, std::size_t& offset) {
  std::int64_t value = 0;
  if (offset + sizeof value > bytes.size()) throw InternalError("collective: truncated header");
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  offset += sizeof value;
  return value;
}

// The dtypes and shapes of `arrays`, as a header that every rank must agree on.
Bytes describe(const std::vector<const Array*>& arrays) {
  Bytes header;
  put(header, static_cast<std::int64_t>(arrays.size()));
  for (const Array* array : arrays) {
    put(header, static_cast<std::int64_t>(array->dtype()));
    put(header, array->rank());
    for (const auto dim : array->shape().dims()) put(header, dim);
  }
  return header;
}

std::string describe_text(const Bytes& header) {
  std::size_t offset = 0;
  const auto count = get(header, offset);
  std::string text;
  for (std::int64_t i = 0; i < count; ++i) {
    const auto dtype = static_cast<DType>(get(header, offset));
    std::vector<std::int64_t> dims(static_cast<std::size_t>(get(header, offset)));
    for (auto& dim : dims) dim = get(header, offset);
    text += str(i == 0 ? "" : ", ", dtype, Shape(dims));
  }
  return text;
}

// The header followed by the arrays' bytes.
Bytes pack(const std::vector<const Array*>& arrays) {
  Bytes payload = describe(arrays);
  std::size_t size = payload.size();
  for (const Array* array : arrays) size += array->nbytes();
  payload.reserve(size);
  for (const Array* array : arrays) {
    const auto* p = static_cast<const char*>(array->raw_data());
    if (array->nbytes() > 0) payload.insert(payload.end(), p, p + array->nbytes());
  }
  return payload;
}

std::vector<const Array*> inputs_of(const KernelContext& ctx) {
  std::vector<const Array*> arrays;
  for (int i = 0; i < ctx.num_inputs(); ++i) arrays.push_back(&ctx.input(i));
  return arrays;
}

// Checks that every rank's payload starts with this rank's header.
void check_headers(const KernelContext& ctx, const std::vector<Bytes>& payloads,
                   const Bytes& header) {
  for (std::size_t peer = 0; peer < payloads.size(); ++peer) {
    const Bytes& payload = payloads[peer];
    if (payload.size() < header.size() ||
        std::memcmp(payload.data(), header.data(), header.size()) != 0) {
      const Bytes theirs(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                                payload.size(), header.size())));
      ctx.fail(str("rank ", rank(), " has ", describe_text(header), " but rank ", peer, " has ",
                   theirs.size() == header.size() ? describe_text(theirs) : "other tensors"));
    }
  }
}

// out = sum over ranks, in rank order, of each rank's element (in double); divided by size() for
// the mean. Blocks of kBlock elements: each rank's block is added to a double accumulator in turn,
// a loop the compiler vectorizes, with the same additions in the same order as one element at a
// time.
template <class T>
void reduce_in_rank_order(const std::vector<Bytes>& payloads, std::size_t offset, ReduceOp op,
                          std::span<T> out) {
  constexpr std::size_t kBlock = 512;
  const std::size_t n = out.size();
  const bool mean = op == ReduceOp::kMean;
  const double ranks = static_cast<double>(payloads.size());
  std::array<double, kBlock> acc{};
  std::array<T, kBlock> part{};
  for (std::size_t begin = 0; begin < n; begin += kBlock) {
    const std::size_t len = std::min(kBlock, n - begin);
    for (std::size_t r = 0; r < payloads.size(); ++r) {
      // Payloads need not be aligned for T: copy the block out first.
      std::memcpy(part.data(), payloads[r].data() + offset + begin * sizeof(T), len * sizeof(T));
      if (r == 0) {
        for (std::size_t j = 0; j < len; ++j) acc[j] = static_cast<double>(part[j]);
      } else {
        for (std::size_t j = 0; j < len; ++j) acc[j] += static_cast<double>(part[j]);
      }
    }
    T* dst = out.data() + begin;
    if (mean) {
      for (std::size_t j = 0; j < len; ++j) dst[j] = static_cast<T>(acc[j] / ranks);
    } else {
      for (std::size_t j = 0; j < len; ++j) dst[j] = static_cast<T>(acc[j]);
    }
  }
}

// Copies bytes [lo, hi) of the arrays' concatenated data to `dst`.
void copy_range(const std::vector<const Array*>& arrays, std::size_t lo, std::size_t hi,
                char* dst) {
  std::size_t at = 0;
  for (const Array* array : arrays) {
    const std::size_t end = at + array->nbytes();
    const std::size_t from = std::max(lo, at);
    const std::size_t to = std::min(hi, end);
    if (from < to) {
      std::memcpy(dst, static_cast<const char*>(array->raw_data()) + (from - at), to - from);
      dst += to - from;
    }
    at = end;
  }
}

// Copies `src` to bytes [lo, hi) of the outputs' concatenated data.
void fill_range(const std::vector<Array*>& outputs, std::size_t lo, std::size_t hi,
                const char* src) {
  std::size_t at = 0;
  for (Array* out : outputs) {
    const std::size_t end = at + out->nbytes();
    const std::size_t from = std::max(lo, at);
    const std::size_t to = std::min(hi, end);
    if (from < to) {
      std::memcpy(static_cast<char*>(out->raw_mutable_data()) + (from - at), src, to - from);
      src += to - from;
    }
    at = end;
  }
}

// All-reduce as a reduce-scatter then an all-gather: rank r sums the r-th of size() near-equal
// ranges of the concatenated elements, each rank's share added in rank order in double, and sends
// the sums to every rank. The additions are those of the single exchange below, so the bits are
// too; each rank sends about 2 (size() - 1) / size() of the data instead of size() - 1 times it.
// Every message starts with the group's header, so ranks whose tensors differ are caught.
template <class T>
void allreduce_scattered(KernelContext& ctx, const std::vector<const Array*>& arrays, ReduceOp op) {
  const Bytes header = describe(arrays);
  const auto n = static_cast<std::size_t>(size());
  const auto me = static_cast<std::size_t>(rank());
  std::size_t total = 0;
  for (const Array* array : arrays) total += static_cast<std::size_t>(array->size());
  // Element ranges, in bytes.
  const auto bound = [&](std::size_t r) { return total * r / n * sizeof(T); };
  std::vector<Bytes> shares(n);
  for (std::size_t r = 0; r < n; ++r) {
    shares[r].reserve(header.size() + bound(r + 1) - bound(r));
    shares[r] = header;
    shares[r].resize(header.size() + bound(r + 1) - bound(r));
    copy_range(arrays, bound(r), bound(r + 1), shares[r].data() + header.size());
  }
  const auto parts = detail::exchange_each("allreduce", ctx.node().name, std::move(shares));
  check_headers(ctx, parts, header);
  Bytes sums = header;
  sums.resize(header.size() + bound(me + 1) - bound(me));
  const std::size_t count = (bound(me + 1) - bound(me)) / sizeof(T);
  std::vector<T> summed(count);
  reduce_in_rank_order(parts, header.size(), op, std::span<T>(summed));
  if (count > 0) std::memcpy(sums.data() + header.size(), summed.data(), count * sizeof(T));
  const auto gathered = detail::exchange("allreduce", ctx.node().name, std::move(sums));
  check_headers(ctx, gathered, header);
  std::vector<Array*> outputs;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    outputs.push_back(&ctx.allocate_output(i, arrays[static_cast<std::size_t>(i)]->shape()));
  }
  for (std::size_t r = 0; r < n; ++r) {
    fill_range(outputs, bound(r), bound(r + 1), gathered[r].data() + header.size());
  }
}

// The reduce-scatter pays from 3 ranks on (with 2, both ways move the same bytes and the second
// round trip and copies cost more than the halved additions: 7.2-7.7 ms against 6.8 ms for the
// 2-rank MLP step of bench/distributed_throughput), and only above this many elements per rank.
constexpr int kScatterRanks = 3;
constexpr std::int64_t kScatterElements = 8192;

void allreduce_kernel(KernelContext& ctx) {
  const auto op = ctx.attrs<ReduceAttrs>().op;
  if (size() == 1) {
    for (int i = 0; i < ctx.num_inputs(); ++i) ctx.set_output(i, ctx.input(i));
    return;
  }
  const auto arrays = inputs_of(ctx);
  std::int64_t total = 0;
  bool same_dtype = true;
  for (const Array* array : arrays) {
    total += array->size();
    same_dtype = same_dtype && array->dtype() == arrays.front()->dtype();
  }
  if (same_dtype && size() >= kScatterRanks && total >= kScatterElements * size()) {
    dispatch_floating(arrays.front()->dtype(),
                      [&](auto tag) { allreduce_scattered<decltype(tag)>(ctx, arrays, op); });
    return;
  }
  const Bytes header = describe(arrays);
  const auto payloads = detail::exchange("allreduce", ctx.node().name, pack(arrays));
  check_headers(ctx, payloads, header);
  std::size_t offset = header.size();
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    Array& out = ctx.allocate_output(i, arrays[static_cast<std::size_t>(i)]->shape());
    dispatch_floating(out.dtype(), [&](auto tag) {
      reduce_in_rank_order(payloads, offset, op, out.mutable_data<decltype(tag)>());
    });
    offset += out.nbytes();
  }
}

std::vector<Tensor> grads_or_zeros(const GradContext& g) {
  std::vector<Tensor> grads;
  for (int i = 0; i < g.num_inputs(); ++i) {
    grads.push_back(g.grad_output(i) ? g.grad_output(i) : zeros_like(g.output(i)));
  }
  return grads;
}

void allreduce_gradient(GradContext& g) {
  const auto grads = grouped_allreduce(grads_or_zeros(g), g.attrs<ReduceAttrs>().op);
  for (int i = 0; i < g.num_inputs(); ++i) g.set(i, grads[static_cast<std::size_t>(i)]);
}

void broadcast_kernel(KernelContext& ctx) {
  const int root = ctx.attrs<BroadcastAttrs>().root;
  if (size() == 1) {
    for (int i = 0; i < ctx.num_inputs(); ++i) ctx.set_output(i, ctx.input(i));
    return;
  }
  const auto arrays = inputs_of(ctx);
  const Bytes header = describe(arrays);
  const Bytes payload = detail::broadcast("broadcast", ctx.node().name,
                                          rank() == root ? pack(arrays) : Bytes{}, root);
  check_headers(ctx, {payload}, header);
  std::size_t offset = header.size();
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    Array& out = ctx.allocate_output(i, arrays[static_cast<std::size_t>(i)]->shape());
    if (out.nbytes() > 0)
      std::memcpy(out.raw_mutable_data(), payload.data() + offset, out.nbytes());
    offset += out.nbytes();
  }
}

void broadcast_gradient(GradContext& g) {
  const int root = g.attrs<BroadcastAttrs>().root;
  const auto sums = grouped_allreduce(grads_or_zeros(g), ReduceOp::kSum);
  for (int i = 0; i < g.num_inputs(); ++i) {
    const Tensor& sum = sums[static_cast<std::size_t>(i)];
    g.set(i, rank() == root ? sum : sum * 0.0);
  }
}

// The first dims of every rank's x, in rank order.
std::vector<std::int64_t> rows_per_rank(const KernelContext& ctx, std::int64_t rows) {
  Bytes payload;
  put(payload, rows);
  const auto payloads = detail::exchange("rank_rows", ctx.node().name, payload);
  std::vector<std::int64_t> counts;
  for (const Bytes& bytes : payloads) {
    std::size_t offset = 0;
    counts.push_back(get(bytes, offset));
  }
  return counts;
}

void allgather_kernel(KernelContext& ctx) {
  const Array& x = ctx.input(0);
  if (size() == 1) {
    ctx.set_output(0, x);
    return;
  }
  Shape row_shape = x.shape();
  row_shape[0] = 1;
  Array row_probe = Array::uninitialized(x.dtype(), row_shape);
  const Bytes header = describe({&row_probe});  // every rank: same dtype and trailing dims
  Bytes payload = header;
  put(payload, x.shape()[0]);
  const auto* data = static_cast<const char*>(x.raw_data());
  if (x.nbytes() > 0) payload.insert(payload.end(), data, data + x.nbytes());
  const auto payloads = detail::exchange("allgather", ctx.node().name, std::move(payload));
  check_headers(ctx, payloads, header);
  Shape out_shape = x.shape();
  out_shape[0] = 0;
  for (const Bytes& bytes : payloads) {
    std::size_t offset = header.size();
    out_shape[0] += get(bytes, offset);
  }
  Array& out = ctx.allocate_output(0, out_shape);
  char* dst = static_cast<char*>(out.raw_mutable_data());
  for (const Bytes& bytes : payloads) {
    const std::size_t offset = header.size() + sizeof(std::int64_t);
    const std::size_t n = bytes.size() - offset;
    if (n > 0) std::memcpy(dst, bytes.data() + offset, n);
    dst += n;
  }
}

void allgather_gradient(GradContext& g) {
  g.set(0, rank_rows(allreduce(g.grad_output(0), ReduceOp::kSum), g.input(0)));
}

// Row offset and count of this rank; `rows` is this rank's count.
std::pair<std::int64_t, std::int64_t> my_rows(const KernelContext& ctx, std::int64_t rows) {
  if (size() == 1) return {0, rows};
  const auto counts = rows_per_rank(ctx, rows);
  std::int64_t offset = 0;
  for (int r = 0; r < rank(); ++r) offset += counts[static_cast<std::size_t>(r)];
  return {offset, rows};
}

std::size_t row_bytes(const Array& array) {
  return array.shape()[0] == 0 ? 0 : array.nbytes() / static_cast<std::size_t>(array.shape()[0]);
}

void rank_rows_kernel(KernelContext& ctx) {
  const Array& gathered = ctx.input(0);
  const auto [offset, rows] = my_rows(ctx, ctx.input(1).shape()[0]);
  Shape shape = gathered.shape();
  if (offset + rows > shape[0]) {
    ctx.fail(str("rows [", offset, ", ", offset + rows, ") of ", shape, " do not exist"));
  }
  shape[0] = rows;
  Array& out = ctx.allocate_output(0, shape);
  const std::size_t bytes = row_bytes(gathered);
  if (out.nbytes() > 0) {
    std::memcpy(
        out.raw_mutable_data(),
        static_cast<const char*>(gathered.raw_data()) + static_cast<std::size_t>(offset) * bytes,
        out.nbytes());
  }
}

void pad_rank_rows_kernel(KernelContext& ctx) {
  const Array& rows_value = ctx.input(0);
  const Shape& shape = ctx.input(1).shape();
  const auto [offset, rows] = my_rows(ctx, rows_value.shape()[0]);
  if (offset + rows > shape[0]) {
    ctx.fail(str("rows [", offset, ", ", offset + rows, ") of ", shape, " do not exist"));
  }
  Array& out = ctx.allocate_output(0, shape);
  if (out.nbytes() == 0) return;
  std::memset(out.raw_mutable_data(), 0, out.nbytes());
  const std::size_t bytes = row_bytes(out);
  if (rows_value.nbytes() > 0) {
    std::memcpy(
        static_cast<char*>(out.raw_mutable_data()) + static_cast<std::size_t>(offset) * bytes,
        rows_value.raw_data(), rows_value.nbytes());
  }
}

void rank_rows_gradient(GradContext& g) { g.set(0, pad_rank_rows(g.grad_output(0), g.input(0))); }
void pad_rank_rows_gradient(GradContext& g) { g.set(0, rank_rows(g.grad_output(0), g.input(0))); }

const OpDef kAllreduceOp{
    .name = "Allreduce", .kernel = allreduce_kernel, .gradient = allreduce_gradient};
const OpDef kBroadcastOp{
    .name = "Broadcast", .kernel = broadcast_kernel, .gradient = broadcast_gradient};
const OpDef kAllgatherOp{
    .name = "Allgather", .kernel = allgather_kernel, .gradient = allgather_gradient};
const OpDef kRankRowsOp{
    .name = "RankRows", .kernel = rank_rows_kernel, .gradient = rank_rows_gradient};
const OpDef kPadRankRowsOp{
    .name = "PadRankRows", .kernel = pad_rank_rows_kernel, .gradient = pad_rank_rows_gradient};

std::vector<TensorSpec> specs_of(std::span<const Tensor> xs) {
  std::vector<TensorSpec> specs;
  for (const Tensor& x : xs) specs.push_back({x.dtype(), x.shape()});
  return specs;
}

void check_group(std::span<const Tensor> xs, std::string_view op, bool floating_only) {
  if (xs.empty()) throw ValueError(str(op, ": needs at least one tensor"));
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i] || xs[i].is_op()) throw ValueError(str(op, ": input ", i, " is not a tensor"));
    if (&xs[i].graph() != &xs[0].graph()) {
      throw ValueError(str(op, ": input ", i, " belongs to another graph"));
    }
    if (floating_only && !is_floating(xs[i].dtype())) {
      throw ValueError(str(op, ": input ", i, " is ", xs[i].dtype(), ", not floating"));
    }
  }
}

}  // namespace

std::vector<Tensor> grouped_allreduce(std::span<const Tensor> xs, ReduceOp op,
                                      std::string_view name) {
  check_group(xs, "allreduce", true);
  return xs[0].graph().record(kAllreduceOp, xs, specs_of(xs), ReduceAttrs{op},
                              name.empty() ? "Allreduce" : name);
}

Tensor allreduce(const Tensor& x, ReduceOp op, std::string_view name) {
  const Tensor xs[] = {x};
  return grouped_allreduce(xs, op, name).front();
}

std::vector<Tensor> grouped_broadcast(std::span<const Tensor> xs, int root, std::string_view name) {
  check_group(xs, "broadcast", false);
  if (root < 0 || root >= size()) {
    throw ValueError(str("broadcast: root ", root, " is not a rank of ", size()));
  }
  return xs[0].graph().record(kBroadcastOp, xs, specs_of(xs), BroadcastAttrs{root},
                              name.empty() ? "Broadcast" : name);
}

Tensor broadcast(const Tensor& x, int root, std::string_view name) {
  const Tensor xs[] = {x};
  return grouped_broadcast(xs, root, name).front();
}

Tensor allgather(const Tensor& x, std::string_view name) {
  const Tensor xs[] = {x};
  check_group(xs, "allgather", false);
  if (x.shape().rank() < 1) {
    throw ValueError(str("allgather: x is a scalar ", x.shape(), "; it needs a first dim"));
  }
  Shape shape = x.shape();
  shape[0] = size() == 1 ? shape[0] : -1;
  return x.graph().record1(kAllgatherOp, xs, {x.dtype(), shape}, {},
                           name.empty() ? "Allgather" : name);
}

Tensor rank_rows(const Tensor& gathered, const Tensor& x) {
  const Tensor inputs[] = {gathered, x};
  Shape shape = gathered.shape();
  if (shape.rank() >= 1) shape[0] = x.shape().rank() >= 1 ? x.shape()[0] : -1;
  return gathered.graph().record1(kRankRowsOp, inputs, {gathered.dtype(), shape}, {}, "RankRows");
}

Tensor pad_rank_rows(const Tensor& rows, const Tensor& gathered) {
  const Tensor inputs[] = {rows, gathered};
  return rows.graph().record1(kPadRankRowsOp, inputs, {rows.dtype(), gathered.shape()}, {},
                              "PadRankRows");
}

}  // namespace ad::distributed
