// Allocation failures are ad::Errors: an Array too large for memory, built directly or by any
// factory, throws ResourceExhaustedError naming the shape and the bytes (never std::bad_alloc), and
// the process and a session keep working afterwards.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <fstream>
#include <string>

#include "autodiff/autodiff.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

namespace {

// 2^45 float32 elements are 2^47 bytes = 128 TiB, the whole user address space of x86-64: no
// allocator can satisfy it, whatever the overcommit policy.
constexpr std::int64_t kBeyondAddressSpace = std::int64_t{1} << 45;

// Linux's overcommit_memory 1 ("always") can grant 4 TiB of address space and then kill the
// process when it is touched, so the issue's [2^40] case runs only under the default policies.
bool overcommit_refuses_huge_requests() {
  std::ifstream in("/proc/sys/vm/overcommit_memory");
  int mode = 0;
  return !(in >> mode) || mode != 1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(allocation_test)

BOOST_AUTO_TEST_CASE(an_array_too_large_for_memory_is_resource_exhausted) {
  const ad::Shape huge{kBeyondAddressSpace};
  const std::string bytes = std::to_string(kBeyondAddressSpace * 4);
  BOOST_CHECK_EXCEPTION((void)ad::Array(ad::DType::Float32, huge), ad::ResourceExhaustedError,
                        (MessageHas{{"Array", "out of memory", bytes + " bytes",
                                     "float32[" + std::to_string(kBeyondAddressSpace) + "]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::Array::uninitialized(ad::DType::Float64, huge),
                        ad::ResourceExhaustedError,
                        (MessageHas{{std::to_string(kBeyondAddressSpace * 8) + " bytes"}}));
  BOOST_CHECK_EXCEPTION((void)ad::Array::full(ad::DType::Int64, {1 << 20, 1 << 25}, 1.0),
                        ad::ResourceExhaustedError, (MessageHas{{"int64[1048576, 33554432]"}}));
  BOOST_CHECK_EXCEPTION((void)ad::Array(ad::DType::Bool, {kBeyondAddressSpace, 4}),
                        ad::ResourceExhaustedError, (MessageHas{{"bool["}}));
  if (overcommit_refuses_huge_requests()) {
    BOOST_CHECK_THROW((void)ad::Array(ad::DType::Float32, {std::int64_t{1} << 40}),
                      ad::ResourceExhaustedError);
  }
  // The process goes on: arrays and a session work.
  const auto small = ad::Array::full(ad::DType::Float32, {3}, 2.0);
  BOOST_TEST(small.data<float>()[2] == 2.0f);
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {3}, "x");
  ad::Session s(g);
  BOOST_TEST(s.eval(ad::reduce_sum(x * x), {{x, small}}).item<float>() == 12.0f);
}

BOOST_AUTO_TEST_SUITE_END()
