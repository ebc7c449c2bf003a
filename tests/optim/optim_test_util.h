// Helpers shared by the optimizer tests: variables with given values, reading values back as
// float64, and element-by-element comparison with a relative tolerance.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"

namespace ad::optim::testing {

// A variable holding `values` (converted to dtype), optionally constrained.
inline Variable make_variable(Graph& graph, const std::string& name,
                              const std::vector<double>& values, const Shape& shape,
                              DType dtype = DType::Float64, Constraint constraint = {}) {
  VariableOptions options;
  options.shape = shape;
  options.dtype = dtype;
  options.constraint = std::move(constraint);
  const Array initial = Array::from<double>(values, shape).astype(dtype);
  options.initializer = [initial](Graph& g, const Shape&, DType) { return constant(g, initial); };
  return Variable::create(graph, name, options);
}

// The variable with this full name; fails the test when there is none.
inline Variable variable_named(Graph& graph, const std::string& name) {
  const int id = graph.find_variable(name);
  BOOST_TEST_REQUIRE(id >= 0, "no variable '" << name << "'");
  return Variable(Tensor(&graph, graph.variable(id).handle_node, 0));
}

// A constant holding `values` as dtype.
inline Tensor make_constant(Graph& graph, const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::Float64) {
  return constant(graph, Array::from<double>(values, shape).astype(dtype));
}

inline std::vector<double> to_doubles(const Array& a) {
  std::vector<double> out;
  for (std::int64_t i = 0; i < a.size(); ++i) out.push_back(a.flat(i));
  return out;
}

// Checks |actual - expected| <= tolerance * max(1, |expected|) for every element.
inline void check_close(const std::vector<double>& actual, const std::vector<double>& expected,
                        double tolerance, const std::string& what) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST_REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
      const double bound = tolerance * std::max(1.0, std::abs(expected[i]));
      BOOST_TEST(std::abs(actual[i] - expected[i]) <= bound,
                 "element " << i << ": " << actual[i] << " vs expected " << expected[i]);
    }
  }
}

}  // namespace ad::optim::testing

namespace ad::optim::testing {

// The small problem of the known-answer tests: a [2, 3] variable and a constant gradient with
// both signs, a zero and entries of different sizes.
inline const std::vector<double> kInitialW = {0.5, -1.25, 2.0, 0.0, 3.5, -0.75};
inline const std::vector<double> kGrad = {0.3, -0.2, 0.0, 1.5, -2.5, 0.05};
inline const Shape kShape{2, 3};

// Applies `train_op` `steps` times; after each run, `advance` moves the float64 reference one
// step and `compare` checks the session against it.
template <class Advance, class Compare>
void run_steps(Session& session, const Tensor& train_op, int steps, Advance advance,
               Compare compare) {
  for (int step = 1; step <= steps; ++step) {
    session.run({train_op});
    advance();
    BOOST_TEST_CONTEXT("after step " << step) { compare(); }
  }
}

}  // namespace ad::optim::testing
