// Random ops on a counter-based generator (Philox-4x32-10, Salmon et al., SC'11): the value of
// element i is a pure function of (key, run counter, i), where the key mixes the graph and op
// seeds. Threads may split the elements any way they like and the result stays bitwise the same.
//
// Seeds follow TF1's get_seed: with a graph seed and no op seed, the op seed is the graph's next
// op seed, drawn when the op is recorded; with an op seed and no graph seed, the graph seed is
// TF's DEFAULT_GRAPH_SEED (87654321). With neither, gradtape also uses 87654321 and the next op
// seed (TF would pick fresh random seeds), so a program draws the same values every time it runs.
// Each run of a node (counted per session) draws the next stream of values.
#include "autodiff/ops/random.h"

#include <cmath>
#include <numbers>

#include "autodiff/error.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/internal/op_errors.h"
#include "autodiff/ops/internal/parallel_loops.h"

namespace ad {

namespace {

// Philox-4x32-10: ten rounds, each followed by the key bump. Always inlined into the generators'
// loops, so consecutive blocks overlap in the pipeline; detail::philox4x32_10 (checked against
// Random123's known answers) is this same function.
[[gnu::always_inline]] inline std::array<std::uint32_t, 4> philox(
    std::array<std::uint32_t, 4> counter, std::array<std::uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{0xD2511F53} * counter[0];
    const std::uint64_t p1 = std::uint64_t{0xCD9E8D57} * counter[2];
    counter = {
        static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
        static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    key[0] += 0x9E3779B9;
    key[1] += 0xBB67AE85;
  }
  return counter;
}

constexpr std::int64_t kDefaultGraphSeed = 87654321;
constexpr std::int64_t kParallelBlocks = std::int64_t{1} << 12;
// Truncated normal redraws a value at most this often; a value is outside two standard deviations
// with probability 0.0455, so the bound is never reached in practice (0.0455^64 < 1e-85).
constexpr int kMaxRedraws = 64;

enum class Distribution : std::uint8_t { Normal, Uniform, TruncatedNormal };

struct RandomAttrs {
  Distribution distribution = Distribution::Normal;
  double a = 0;  // mean or minval
  double b = 1;  // stddev or maxval
  std::uint64_t key = 0;
};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::array<std::uint32_t, 2> split_key(std::uint64_t key) {
  return {static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32)};
}

// Four random words for block `block` of run `run`: Philox-4x32-10 of the counter (block, run).
std::array<std::uint32_t, 4> block_words(std::array<std::uint32_t, 2> key, std::uint64_t run,
                                         std::uint64_t block) {
  return philox({static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                 static_cast<std::uint32_t>(run), static_cast<std::uint32_t>(run >> 32)},
                key);
}

// A double in [0, 1) with 53 random bits from two words.
double unit_double(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (std::uint64_t{hi} << 21) ^ (lo >> 11);
  return static_cast<double>(bits) * 0x1.0p-53;
}

// Two independent standard normals from one block (Box-Muller in double precision).
std::array<double, 2> normal_pair(const std::array<std::uint32_t, 4>& w) {
  const double u1 = 1.0 - unit_double(w[0], w[1]);  // (0, 1]: log(u1) is finite
  const double u2 = unit_double(w[2], w[3]);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  return {r * std::cos(theta), r * std::sin(theta)};
}

// Calls f(block) for every block in [0, blocks), in parallel when there are many.
template <class F>
void for_each_block(std::int64_t blocks, F f) {
  detail::for_each_index(blocks, blocks >= kParallelBlocks, f);
}

// The generators' lambdas capture by value: captured by reference, every scalar would be reloaded
// after each store to `out`, which the compiler must assume may alias it.
template <class T>
void normal(const RandomAttrs& attrs, std::uint64_t run, std::span<T> values) {
  const auto key = split_key(attrs.key);
  const auto n = static_cast<std::int64_t>(values.size());
  const double mean = attrs.a;
  const double stddev = attrs.b;
  T* out = values.data();
  for_each_block((n + 1) / 2, [=](std::int64_t b) {
    const auto z = normal_pair(block_words(key, run, static_cast<std::uint64_t>(b)));
    out[2 * b] = static_cast<T>(mean + stddev * z[0]);
    if (2 * b + 1 < n) out[2 * b + 1] = static_cast<T>(mean + stddev * z[1]);
  });
}

// Element 2b + k takes the first of its block's redraws (each under its own key) that lies within
// two standard deviations.
template <class T>
void truncated_normal(const RandomAttrs& attrs, std::uint64_t run, std::span<T> values) {
  std::array<std::array<std::uint32_t, 2>, kMaxRedraws> keys{};
  keys[0] = split_key(attrs.key);
  for (std::size_t j = 1; j < keys.size(); ++j) keys[j] = split_key(splitmix64(attrs.key + j));
  const auto* key_list = keys.data();
  const auto n = static_cast<std::int64_t>(values.size());
  const double mean = attrs.a;
  const double stddev = attrs.b;
  T* out = values.data();
  for_each_block((n + 1) / 2, [=](std::int64_t b) {
    std::array<double, 2> value{0.0, 0.0};
    std::array<bool, 2> done{false, 2 * b + 1 >= n};
    for (int j = 0; j < kMaxRedraws && !(done[0] && done[1]); ++j) {
      const auto z = normal_pair(block_words(key_list[j], run, static_cast<std::uint64_t>(b)));
      for (std::size_t k = 0; k < 2; ++k) {
        if (!done[k] && std::abs(z[k]) <= 2.0) {
          value[k] = z[k];
          done[k] = true;
        }
      }
    }
    out[2 * b] = static_cast<T>(mean + stddev * value[0]);
    if (2 * b + 1 < n) out[2 * b + 1] = static_cast<T>(mean + stddev * value[1]);
  });
}

// float32: four values per block, 24 bits each; float64: two values per block, 53 bits each.
// Rounding minval + (maxval - minval) * u to T can land on maxval; such values step back below it.
template <class T>
void uniform(const RandomAttrs& attrs, std::uint64_t run, std::span<T> values) {
  const auto key = split_key(attrs.key);
  const auto n = static_cast<std::int64_t>(values.size());
  const double lo = attrs.a;
  const double range = attrs.b - attrs.a;
  const T hi = static_cast<T>(attrs.b);
  const T below_hi = std::nextafter(hi, static_cast<T>(lo));
  constexpr std::int64_t kPerBlock = std::is_same_v<T, float> ? 4 : 2;
  T* out = values.data();
  for_each_block((n + kPerBlock - 1) / kPerBlock, [=](std::int64_t b) {
    const auto w = block_words(key, run, static_cast<std::uint64_t>(b));
    std::array<double, kPerBlock> unit{};
    if constexpr (kPerBlock == 4) {
      for (std::size_t k = 0; k < 4; ++k) unit[k] = static_cast<double>(w[k] >> 8) * 0x1.0p-24;
    } else {
      unit = {unit_double(w[0], w[1]), unit_double(w[2], w[3])};
    }
    for (std::int64_t k = 0; k < kPerBlock && kPerBlock * b + k < n; ++k) {
      const T v = static_cast<T>(lo + range * unit[static_cast<std::size_t>(k)]);
      out[kPerBlock * b + k] = v < hi ? v : below_hi;
    }
  });
}

void generate(KernelContext& ctx, Array& out) {
  const auto& attrs = ctx.attrs<RandomAttrs>();
  const std::uint64_t run = ctx.variables().next_counter(&ctx.node());
  dispatch_floating(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto values = out.mutable_data<T>();
    switch (attrs.distribution) {
      case Distribution::Normal:
        normal(attrs, run, values);
        break;
      case Distribution::Uniform:
        uniform(attrs, run, values);
        break;
      case Distribution::TruncatedNormal:
        truncated_normal(attrs, run, values);
        break;
    }
  });
}

void random_kernel(KernelContext& ctx) {
  generate(ctx, ctx.allocate_output(0, ctx.node().outputs[0].shape));
}

void random_by_tensor_kernel(KernelContext& ctx) {
  generate(ctx, ctx.allocate_output(0, detail::shape_from_input(ctx, 0, "the requested shape")));
}

const OpDef kRandomNormalOp{.name = "RandomStandardNormal", .kernel = random_kernel};
const OpDef kRandomUniformOp{.name = "RandomUniform", .kernel = random_kernel};
const OpDef kTruncatedNormalOp{.name = "TruncatedNormal", .kernel = random_kernel};
// The same ops shaped by a run-time shape tensor (input 0); same attributes, so the same values.
const OpDef kRandomNormalByTensorOp{.name = "RandomStandardNormal",
                                    .kernel = random_by_tensor_kernel};
const OpDef kRandomUniformByTensorOp{.name = "RandomUniform", .kernel = random_by_tensor_kernel};
const OpDef kTruncatedNormalByTensorOp{.name = "TruncatedNormal",
                                       .kernel = random_by_tensor_kernel};

const OpDef& op_for(Distribution distribution, bool by_tensor) {
  switch (distribution) {
    case Distribution::Normal:
      return by_tensor ? kRandomNormalByTensorOp : kRandomNormalOp;
    case Distribution::Uniform:
      return by_tensor ? kRandomUniformByTensorOp : kRandomUniformOp;
    case Distribution::TruncatedNormal:
      break;
  }
  return by_tensor ? kTruncatedNormalByTensorOp : kTruncatedNormalOp;
}

// The attributes of a random op: checks and the Philox key from the graph and op seeds.
RandomAttrs make_attrs(Graph& graph, std::string_view who, Distribution distribution, double a,
                       double b, const RandomOptions& options) {
  if (!is_floating(options.dtype)) {
    throw ValueError(
        str(who, ": dtype ", options.dtype, " is not supported; use float32 or float64"));
  }
  if (!std::isfinite(a) || !std::isfinite(b)) {
    throw ValueError(str(who, ": parameters ", a, " and ", b, " must be finite"));
  }
  if (distribution == Distribution::Uniform && !(a < b)) {
    throw ValueError(str(who, ": minval ", a, " must be less than maxval ", b));
  }
  if (distribution != Distribution::Uniform && b < 0) {
    throw ValueError(str(who, ": stddev ", b, " is negative"));
  }
  const std::int64_t graph_seed = graph.seed().value_or(kDefaultGraphSeed);
  const std::int64_t op_seed = options.seed ? *options.seed : graph.next_op_seed();
  const std::uint64_t key = splitmix64(splitmix64(static_cast<std::uint64_t>(graph_seed)) ^
                                       static_cast<std::uint64_t>(op_seed));
  return {distribution, a, b, key};
}

Tensor record_random(Graph& graph, const Shape& shape, std::string_view fn,
                     Distribution distribution, double a, double b, const RandomOptions& options) {
  const OpDef& op = op_for(distribution, false);
  const std::string who = detail::op_label(graph, fn, op.name);
  if (!shape.is_fully_defined()) {
    throw ValueError(str(who, ": shape ", shape,
                         " must be fully defined (random_uniform also takes a dims tensor)"));
  }
  detail::require_countable(who, shape);
  return graph.record1(op, {}, {options.dtype, shape},
                       make_attrs(graph, who, distribution, a, b, options));
}

// The static shape is as much of `dims`'s value as is known when recording (all of it for a
// constant or shape(x) of a known x); the kernel checks the fed value.
Tensor record_random_by_tensor(const Tensor& dims, std::string_view fn, Distribution distribution,
                               double a, double b, const RandomOptions& options) {
  if (!dims) throw ValueError(str(fn, ": the shape tensor is empty"));
  Graph& graph = dims.graph();
  const OpDef& op = op_for(distribution, true);
  const std::string who = detail::op_label(graph, fn, op.name);
  const Shape shape = detail::static_dims_value(dims, who, false);
  const Tensor inputs[] = {dims};
  return graph.record1(op, inputs, {options.dtype, shape},
                       make_attrs(graph, who, distribution, a, b, options), op.name);
}

}  // namespace

namespace detail {
std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                           std::array<std::uint32_t, 2> key) {
  return philox(counter, key);
}
}  // namespace detail

Tensor random_normal(Graph& graph, const Shape& shape, double mean, double stddev,
                     const RandomOptions& options) {
  return record_random(graph, shape, "random_normal", Distribution::Normal, mean, stddev, options);
}

Tensor random_uniform(Graph& graph, const Shape& shape, double minval, double maxval,
                      const RandomOptions& options) {
  return record_random(graph, shape, "random_uniform", Distribution::Uniform, minval, maxval,
                       options);
}

Tensor truncated_normal(Graph& graph, const Shape& shape, double mean, double stddev,
                        const RandomOptions& options) {
  return record_random(graph, shape, "truncated_normal", Distribution::TruncatedNormal, mean,
                       stddev, options);
}

Tensor random_normal(const Tensor& shape, double mean, double stddev,
                     const RandomOptions& options) {
  return record_random_by_tensor(shape, "random_normal", Distribution::Normal, mean, stddev,
                                 options);
}

Tensor random_uniform(const Tensor& shape, double minval, double maxval,
                      const RandomOptions& options) {
  return record_random_by_tensor(shape, "random_uniform", Distribution::Uniform, minval, maxval,
                                 options);
}

Tensor truncated_normal(const Tensor& shape, double mean, double stddev,
                        const RandomOptions& options) {
  return record_random_by_tensor(shape, "truncated_normal", Distribution::TruncatedNormal, mean,
                                 stddev, options);
}

}  // namespace ad
