// Consumer with its own layers/ and data/ headers next to gradtape's (see CMakeLists.txt): fits
// y = 2 x + 1 with one gradient-descent step of a gradtape Dense layer and compares the updated
// kernel and bias with the closed-form step computed by this project's own layers/dense.h; records
// a conv2d (whose header includes gradtape's layers/dense.h) and builds a gradtape Dataset (whose
// header only gradtape's data/loaders.h includes here).
#include <gradtape/autodiff/autodiff.h>
#include <gradtape/data/loaders.h>
#include <gradtape/layers/conv2d.h>
#include <gradtape/layers/dense.h>
#include <gradtape/layers/losses.h>
#include <gradtape/optim/gradient_descent.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "data/dataset.h"
#include "data/loaders.h"
#include "layers/dense.h"

namespace {

ad::Array column(const std::vector<double>& values) {
  const std::vector<float> floats(values.begin(), values.end());
  return ad::Array::from(floats, ad::Shape{static_cast<std::int64_t>(values.size()), 1});
}

}  // namespace

int main() {
  const app::data::Points points = app::data::load_line(5);
  const app::layers::Linear start{.w = 0.5, .b = -0.25};
  const double learning_rate = 0.1;
  const app::layers::Linear expected =
      app::layers::mse_step(start, points.x, points.y, learning_rate);

  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 1}, "x");
  auto y = ad::placeholder(g, ad::DType::Float32, {-1, 1}, "y");
  ad::layers::Dense layer(1, {.kernel_initializer = ad::initializers::constant(start.w),
                              .bias_initializer = ad::initializers::constant(start.b)});
  auto loss = ad::losses::mean_squared_error(y, layer(x));
  auto train = ad::optim::GradientDescent({.learning_rate = learning_rate}).minimize(loss);

  auto image = ad::placeholder(g, ad::DType::Float32, {1, 4, 4, 1}, "image");
  auto features = ad::layers::conv2d(image, 2, {3, 3});

  ad::Session session(g);
  session.run({ad::global_variables_initializer(g)});
  session.run({train}, {{x, column(points.x)}, {y, column(points.y)}});
  const double w = session.eval(layer.kernel().value()).flat(0);
  const double b = session.eval(layer.bias().value()).flat(0);

  ad::data::Dataset dataset;
  dataset.features = column(points.x);
  dataset.labels = ad::Array::from(std::vector<std::int64_t>{0, 0, 1, 1, 1}, ad::Shape{5});
  dataset.num_classes = 2;
  const auto counts = dataset.class_counts();

  std::printf(
      "one step: w %.7f (expected %.7f), b %.7f (expected %.7f); conv2d output %s; "
      "class counts %lld, %lld\n",
      w, expected.w, b, expected.b, features.shape().to_string().c_str(),
      static_cast<long long>(counts[0]), static_cast<long long>(counts[1]));
  const bool ok = std::abs(w - expected.w) < 1e-6 && std::abs(b - expected.b) < 1e-6 &&
                  features.shape() == ad::Shape{1, 2, 2, 2} && counts[0] == 2 && counts[1] == 3;
  return ok ? 0 : 1;
}
