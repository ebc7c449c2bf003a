// Consumer of an installed gradtape: records y = 3 x^2 + x, asks for dy/dx at x = 2 (expects 13),
// and touches the data library, so every exported target must compile, link and run.
#include <autodiff/autodiff.h>
#include <data/dataset.h>

#include <cmath>
#include <cstdio>

int main() {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  auto y = 3.0 * x * x + x;
  auto dy_dx = ad::gradients(y, {x})[0];
  ad::Session session(g);
  const double grad = session.eval(dy_dx, {{x, ad::Array::scalar(2.0)}}).item<double>();
  const auto order = ad::data::permutation(5, 1);
  std::printf("dy/dx at x = 2: %g (expected 13); permutation of 5: %zu indices\n", grad,
              order.size());
  return std::abs(grad - 13.0) < 1e-12 && order.size() == 5 ? 0 : 1;
}
