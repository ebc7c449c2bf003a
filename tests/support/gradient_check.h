// Test helpers: one-line gradient checks against float64 central differences, random arrays with
// fixed seeds, and predicates for checking error messages.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/array.h"
#include "autodiff/gradient_check.h"
#include "autodiff/graph.h"
#include "autodiff/session.h"
#include "autodiff/tensor.h"

namespace ad::testing {

// Uniform random float64 values in [lo, hi), reproducible from `seed`.
Array random_array(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0);
// Normal random float64 values.
Array random_normal(const Shape& shape, std::uint64_t seed, double mean = 0.0, double stddev = 1.0);

// Builds y = f(placeholders shaped like `values`) in a fresh graph, then checks the first-order
// gradient (and, with second_order, the gradient of a random projection of the gradient) against
// central differences. Fails the current test case with the worst element when error > tolerance.
void check_gradient(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                    const std::vector<Array>& values, double tolerance = 1e-6,
                    bool second_order = false);

// Predicate for BOOST_CHECK_EXCEPTION: the message contains every fragment.
struct MessageHas {
  std::vector<std::string> fragments;
  template <class E>
  bool operator()(const E& e) const {
    const std::string what = e.what();
    for (const auto& f : fragments) {
      if (what.find(f) == std::string::npos) {
        BOOST_TEST_MESSAGE("message '" << what << "' lacks '" << f << "'");
        return false;
      }
    }
    return true;
  }
};

}  // namespace ad::testing
