// libFuzzer target for while_loop: builds and runs a loop from fuzzed parameters
//   i = start; x = x0; v = [];  while (i < limit) { i += stride; x = x * a + b; v = concat(v, [x])
//   }
// with an optional maximum_iterations (possibly zero or negative), optional shape invariants for
// the growing vector (sometimes wrong ones), back_prop on or off (then dx/da is fetched too) and
// an optional session memory cap.
// Contract checked: building either succeeds or throws an ad::Error; a run either throws an
// ad::Error (never InternalError; ResourceExhaustedError only under a cap) or gives exactly what
// the loop computed in plain C++ gives: the iteration count, x bit for bit, the vector of every x,
// and dx/da within 1e-9 relative of its forward-mode derivative; a second run gives the same bits.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "fuzz/fuzz_util.h"

namespace {

struct Params {
  std::int64_t start = 0, limit = 0, stride = 1;
  std::optional<std::int64_t> maximum_iterations;
  double x0 = 0, a = 1, b = 0;
  bool back_prop = true;
  int invariant = 0;  // 0: [-1] (may grow), 1: none (the vector's entry shape), 2: [k] fixed
  std::int64_t fixed = 0;
  std::size_t memory_limit = 0;
};

// The loop in plain C++; nullopt when it would run more than kMaxIterations times.
constexpr std::int64_t kMaxIterations = 400;
struct Simulated {
  std::int64_t i = 0, iterations = 0;
  double x = 0, dx_da = 0;
  std::vector<double> v;
};
std::optional<Simulated> simulate(const Params& p) {
  Simulated s{p.start, 0, p.x0, 0.0, {}};
  while (s.i < p.limit) {
    if (p.maximum_iterations && s.iterations >= *p.maximum_iterations) break;
    if (s.iterations == kMaxIterations) return std::nullopt;
    s.i += p.stride;
    s.dx_da = s.dx_da * p.a + s.x;     // d(x a + b)/da = dx/da * a + x
    const double product = s.x * p.a;  // two statements: no fused multiply-add
    s.x = product + p.b;
    s.v.push_back(s.x);
    ++s.iterations;
  }
  return s;
}

Params fuzzed_params(FuzzedDataProvider& in) {
  Params p;
  p.start = in.ConsumeIntegralInRange<std::int64_t>(-20, 20);
  p.limit = in.ConsumeIntegralInRange<std::int64_t>(-20, 300);
  p.stride = in.ConsumeIntegralInRange<std::int64_t>(-2, 6);
  if (in.ConsumeBool()) p.maximum_iterations = in.ConsumeIntegralInRange<std::int64_t>(-3, 300);
  p.x0 = in.ConsumeFloatingPointInRange<double>(-4, 4);
  p.a = in.ConsumeFloatingPointInRange<double>(-1.5, 1.5);
  p.b = in.ConsumeFloatingPointInRange<double>(-4, 4);
  p.back_prop = in.ConsumeBool();
  p.invariant = in.ConsumeIntegralInRange<int>(0, 2);
  p.fixed = in.ConsumeIntegralInRange<std::int64_t>(0, 3);
  if (in.ConsumeBool()) p.memory_limit = in.ConsumeIntegralInRange<std::size_t>(0, 64 * 1024);
  return p;
}

struct Loop {
  ad::Graph graph;
  ad::Tensor a, i, x, v, dx_da;
};

void build(Loop& l, const Params& p) {
  ad::Graph& g = l.graph;
  l.a = ad::placeholder(g, ad::DType::Float64, {}, "a");
  const auto b = ad::constant(g, ad::Array::scalar(p.b));
  const auto limit = ad::constant(g, ad::Array::scalar<std::int64_t>(p.limit));
  const auto stride = ad::constant(g, ad::Array::scalar<std::int64_t>(p.stride));
  const std::vector<ad::Tensor> vars{ad::constant(g, ad::Array::scalar<std::int64_t>(p.start)),
                                     ad::constant(g, ad::Array::scalar(p.x0)),
                                     ad::constant(g, ad::Array(ad::DType::Float64, {0}))};
  ad::WhileLoopOptions options{.maximum_iterations = p.maximum_iterations,
                               .back_prop = p.back_prop};
  if (p.invariant == 0) options.shape_invariants = {{}, {}, {-1}};
  if (p.invariant == 2) options.shape_invariants = {{}, {}, {p.fixed}};
  const auto out = ad::while_loop(
      [&](const std::vector<ad::Tensor>& vs) { return ad::less(vs[0], limit); },
      [&](const std::vector<ad::Tensor>& vs) -> std::vector<ad::Tensor> {
        const auto next = vs[1] * l.a + b;
        return {vs[0] + stride, next, ad::concat({vs[2], ad::reshape(next, {1})}, 0)};
      },
      vars, options);
  l.i = out[0];
  l.x = out[1];
  l.v = out[2];
  if (p.back_prop) l.dx_da = ad::gradients(l.x, {l.a})[0];
}

bool close(double got, double want) {
  if (!std::isfinite(want)) return true;  // overflowed: no reference to compare with
  return std::abs(got - want) <= 1e-9 * std::max(1.0, std::abs(want));
}

void check(const std::vector<ad::Array>& out, const Simulated& s, const Params& p) {
  if (out[0].item<std::int64_t>() != s.i) fuzz::fail("the loop counter differs");
  if (!out[1].bitwise_equal(ad::Array::scalar(s.x))) fuzz::fail("x differs from plain C++");
  const auto v = out[2].data<double>();
  if (!std::equal(v.begin(), v.end(), s.v.begin(), s.v.end(), [](double l, double r) {
        return std::bit_cast<std::uint64_t>(l) == std::bit_cast<std::uint64_t>(r);
      })) {
    fuzz::fail("the stacked values differ");
  }
  if (p.back_prop && !close(out[3].item<double>(), s.dx_da)) fuzz::fail("dx/da is wrong");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ad::set_warning_handler([](std::string_view) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const Params p = fuzzed_params(in);
  const auto simulated = simulate(p);
  if (!simulated) return 0;  // too long a loop for a fuzz iteration
  Loop l;
  try {
    build(l, p);
  } catch (const ad::InternalError& e) {
    fuzz::fail(std::string("building: ") + e.what());
  } catch (const ad::Error&) {
    return 0;
  }
  std::vector<ad::Tensor> fetches{l.i, l.x, l.v};
  if (p.back_prop) fetches.push_back(l.dx_da);
  ad::Session session(l.graph, {.memory_limit_bytes = p.memory_limit});
  const ad::FeedDict feeds{{l.a, ad::Array::scalar(p.a)}};
  std::vector<ad::Array> first;
  try {
    first = session.run(fetches, feeds);
  } catch (const ad::InternalError& e) {
    fuzz::fail(std::string("running: ") + e.what());
  } catch (const ad::ResourceExhaustedError& e) {
    if (p.memory_limit == 0) fuzz::fail(std::string("no cap, yet: ") + e.what());
    return 0;
  } catch (const ad::Error&) {
    return 0;
  }
  check(first, *simulated, p);
  std::vector<ad::Array> second;
  try {
    second = session.run(fetches, feeds);
  } catch (const ad::ResourceExhaustedError& e) {
    // The first run's results, still held, count against the cap.
    if (p.memory_limit == 0) fuzz::fail(std::string("no cap, yet: ") + e.what());
    return 0;
  }
  for (std::size_t k = 0; k < first.size(); ++k) {
    if (!first[k].bitwise_equal(second[k])) fuzz::fail("a second run gives other bits");
  }
  return 0;
}
