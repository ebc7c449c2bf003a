// A table of bad inputs across the public API: ops, Session, layers, optimizers, Saver and the
// data loaders. Every row is one wrong call, the ad::Error subtype it must raise and the fragments
// its message must hold (the op or function, the node or variable name, the shapes). A row fails
// when the call returns, throws another type, or throws a message without the fragments; a crash
// or abort fails the whole executable.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <typeinfo>
#include <vector>

#include "autodiff/autodiff.h"
#include "data/dataset.h"
#include "data/loaders.h"
#include "layers/layers.h"
#include "optim/optim.h"
#include "tests/support/gradient_check.h"

namespace {

using ad::Array;
using ad::DType;
using ad::Graph;
using ad::Shape;
using ad::Tensor;

constexpr std::int64_t kHuge = std::int64_t{1} << 40;

struct Row {
  std::string call;           // what the row does, as a user would write it
  std::function<void()> run;  // the call itself
  std::string expected_type;  // for the report
  std::function<bool(const ad::Error&)> has_expected_type;
  std::vector<std::string> fragments;
};

template <class E>
Row row(std::string call, std::function<void()> run, std::vector<std::string> fragments) {
  return {std::move(call), std::move(run), typeid(E).name(),
          [](const ad::Error& e) { return dynamic_cast<const E*>(&e) != nullptr; },
          std::move(fragments)};
}

int rows_checked = 0;

void check_rows(const std::vector<Row>& rows) {
  for (const auto& r : rows) {
    ++rows_checked;
    BOOST_TEST_CONTEXT("row: " << r.call) {
      try {
        r.run();
        BOOST_ERROR("returned normally; expected " << r.expected_type);
      } catch (const ad::Error& e) {
        BOOST_TEST(r.has_expected_type(e), "threw " << typeid(e).name() << " (" << e.what()
                                                    << "); expected " << r.expected_type);
        const std::string what = e.what();
        for (const auto& f : r.fragments) {
          BOOST_TEST(what.find(f) != std::string::npos,
                     "message '" << what << "' lacks '" << f << "'");
        }
        BOOST_TEST(what.find('\n') == std::string::npos, "message is not one line: " << what);
      } catch (const std::exception& e) {
        BOOST_ERROR("threw a non-ad::Error " << typeid(e).name() << ": " << e.what());
      }
    }
  }
}

Array f32(const Shape& shape, float value = 1.f) {
  return Array::full(DType::Float32, shape, value);
}

// "'name'" for the node behind a tensor named "name:0", as error messages quote nodes.
std::string node_name(const Tensor& t) {
  return "'" + t.name().substr(0, t.name().rfind(':')) + "'";
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gradtape_bad_inputs_" + name)).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_inputs_test)

// Mistakes made while building a graph: ValueError when recorded, before anything runs.
BOOST_AUTO_TEST_CASE(graph_building_mistakes_raise_value_errors) {
  Graph g;
  auto x23 = ad::placeholder(g, DType::Float32, {2, 3}, "x23");
  auto x4 = ad::placeholder(g, DType::Float32, {4}, "x4");
  auto d23 = ad::placeholder(g, DType::Float64, {2, 3}, "d23");
  auto i2 = ad::placeholder(g, DType::Int64, {2}, "i2");
  auto b2 = ad::placeholder(g, DType::Bool, {2}, "b2");
  auto m45 = ad::placeholder(g, DType::Float32, {4, 5}, "m45");
  Graph other;
  auto y_other = ad::placeholder(other, DType::Float32, {2, 3}, "y_other");
  check_rows({
      row<ad::ValueError>("add([2, 3], [4])", [&] { (void)ad::add(x23, x4); }, {"[2, 3]", "[4]"}),
      row<ad::ValueError>("add(float32, float64)", [&] { (void)ad::add(x23, d23); },
                          {"float32", "float64"}),
      row<ad::ValueError>("mul of tensors of two graphs", [&] { (void)ad::mul(x23, y_other); },
                          {"graph"}),
      row<ad::ValueError>("matmul([2, 3], [4, 5])", [&] { (void)ad::matmul(x23, m45); },
                          {"matmul", "[2, 3]", "[4, 5]"}),
      row<ad::ValueError>("matmul of a rank-1 tensor", [&] { (void)ad::matmul(x4, m45); },
                          {"matmul", "[4]"}),
      row<ad::ValueError>("matmul(int64, ...)", [&] { (void)ad::matmul(i2, i2); },
                          {"matmul", "int64"}),
      row<ad::ValueError>("reduce_sum(x, axis 2) of a rank-2 tensor",
                          [&] { (void)ad::reduce_sum(x23, {2}); }, {"2", "[2, 3]"}),
      row<ad::ValueError>("reduce_mean(x, axis -3) of a rank-2 tensor",
                          [&] { (void)ad::reduce_mean(x23, {-3}); }, {"-3", "[2, 3]"}),
      row<ad::ValueError>("reduce_sum(x, axes {1, 1})",
                          [&] {
                            (void)ad::reduce_sum(x23, {1, 1});
                          },
                          {"1"}),
      row<ad::ValueError>("argmax(x, axis 5)", [&] { (void)ad::argmax(x23, 5); }, {"5", "[2, 3]"}),
      row<ad::ValueError>("reshape([2, 3] -> [4])", [&] { (void)ad::reshape(x23, Shape{4}); },
                          {"reshape", "[2, 3]", "[4]"}),
      row<ad::ValueError>("reshape with two -1 dims",
                          [&] {
                            (void)ad::reshape(x23, Shape{-1, -1});
                          },
                          {"reshape"}),
      row<ad::ValueError>("transpose([2, 3], perm {0})", [&] { (void)ad::transpose(x23, {0}); },
                          {"transpose", "[2, 3]"}),
      row<ad::ValueError>("transpose([2, 3], perm {0, 0})",
                          [&] {
                            (void)ad::transpose(x23, {0, 0});
                          },
                          {"transpose"}),
      row<ad::ValueError>("concat([2, 3], [4, 5], axis 0)",
                          [&] {
                            (void)ad::concat({x23, m45}, 0);
                          },
                          {"concat", "[2, 3]", "[4, 5]"}),
      row<ad::ValueError>("concat(..., axis 2) of rank-2 tensors",
                          [&] {
                            (void)ad::concat({x23, x23}, 2);
                          },
                          {"concat", "2"}),
      row<ad::ValueError>("squeeze([2, 3], axis 0) of a dim that is not 1",
                          [&] { (void)ad::squeeze(x23, {0}); }, {"squeeze", "[2, 3]"}),
      row<ad::ValueError>("expand_dims([2, 3], axis 4)", [&] { (void)ad::expand_dims(x23, 4); },
                          {"expand_dims", "4"}),
      row<ad::ValueError>("slice([2, 3], begin {0, 2}, size {2, 2}) past the end",
                          [&] {
                            (void)ad::slice(x23, {0, 2}, {2, 2});
                          },
                          {"slice", "[2, 3]"}),
      row<ad::ValueError>("gather(params, float indices)", [&] { (void)ad::gather(x23, x4); },
                          {"gather", "float32"}),
      row<ad::ValueError>("one_hot(indices, depth -1)", [&] { (void)ad::one_hot(i2, -1); },
                          {"one_hot", "-1"}),
      row<ad::ValueError>("relu of a bool tensor", [&] { (void)ad::relu(b2); }, {"bool"}),
      row<ad::ValueError>("softmax(x, axis 2) of a rank-2 tensor",
                          [&] { (void)ad::nn::softmax(x23, 2); }, {"Softmax", "axis 2", "rank 2"}),
      row<ad::ValueError>("sparse_softmax_cross_entropy(float labels, logits)",
                          [&] { (void)ad::nn::sparse_softmax_cross_entropy_with_logits(x4, x23); },
                          {"float32"}),
      row<ad::ValueError>("sparse_softmax_cross_entropy(labels [4], logits [2, 3])",
                          [&] {
                            auto labels = ad::placeholder(g, DType::Int64, {4}, "labels4");
                            (void)ad::nn::sparse_softmax_cross_entropy_with_logits(labels, x23);
                          },
                          {"[4]", "[2, 3]"}),
      row<ad::ValueError>("softmax_cross_entropy(labels [4], logits [2, 3])",
                          [&] { (void)ad::nn::softmax_cross_entropy_with_logits(x4, x23); },
                          {"[4]", "[2, 3]"}),
      row<ad::ValueError>("check_numerics of an int64 tensor",
                          [&] { (void)ad::check_numerics(i2, "labels"); },
                          {"check_numerics", "'i2:0'"}),
      row<ad::ValueError>("cond with a non-bool predicate",
                          [&] {
                            (void)ad::cond(
                                x4, [&] { return x23; }, [&] { return x23; });
                          },
                          {"cond"}),
      row<ad::ValueError>("gradients(y, x of another graph)",
                          [&] { (void)ad::gradients(ad::reduce_sum(x23), {y_other}); }, {"graph"}),
      row<ad::ValueError>("Array::from with 5 values for [2, 3]",
                          [] {
                            (void)Array::from<float>({1, 2, 3, 4, 5}, {2, 3});
                          },
                          {"5", "[2, 3]"}),
      row<ad::ValueError>("Array of shape [2^40, 2^40] (element count overflows int64)",
                          [] {
                            (void)Array(DType::Float32, {kHuge, kHuge});
                          },
                          {"[1099511627776, 1099511627776]", "int64"}),
      row<ad::ValueError>("placeholder with a dim of -2",
                          [&] {
                            (void)ad::placeholder(g, DType::Float32, {2, -2}, "bad_dim");
                          },
                          {"-2"}),
      row<ad::ValueError>("Variable::create twice with one name",
                          [&] {
                            (void)ad::Variable::create(g, "w", {.shape = {2}});
                            (void)ad::Variable::create(g, "w", {.shape = {2}});
                          },
                          {"Variable w already exists", "reuse"}),
      row<ad::ValueError>("get_variable with another shape than the existing one (reuse)",
                          [&] {
                            {
                              ad::VariableScope scope(g, "model");
                              (void)ad::get_variable(g, "shared", {.shape = {3}});
                            }
                            ad::VariableScope scope(g, "model", ad::Reuse::kTrue);
                            (void)ad::get_variable(g, "shared", {.shape = {4}});
                          },
                          {"model/shared", "[4]", "[3]"}),
  });
}

// Wrong values at run time: InvalidArgumentError (and the other run-time types) from Session::run.
BOOST_AUTO_TEST_CASE(run_time_mistakes_raise_specific_errors) {
  Graph g;
  auto x = ad::placeholder(g, DType::Float32, {-1, 3}, "x");
  auto a = ad::placeholder(g, DType::Float32, {-1}, "a");
  auto b = ad::placeholder(g, DType::Float32, {-1}, "b");
  auto m = ad::placeholder(g, DType::Float32, {-1, -1}, "m");
  auto labels = ad::placeholder(g, DType::Int64, {-1}, "labels");
  auto dims = ad::placeholder(g, DType::Int64, {2}, "dims");
  auto flag = ad::placeholder(g, DType::Bool, {}, "flag");
  auto y = ad::reduce_sum(x * 2.0);
  auto sum_ab = ad::add(a, b);
  auto mm = ad::matmul(m, m);
  auto reshaped = ad::reshape(a, Shape{-1, 4});
  auto xent = ad::nn::sparse_softmax_cross_entropy_with_logits(labels, x);
  auto filled = ad::fill(dims, 1.0);
  auto logged = ad::log(a);
  auto huge_zeros = ad::zeros(g, {kHuge, kHuge});
  auto branch = ad::cond(
      flag, [&] { return a * 2.0; }, [&] { return a; });
  auto v = ad::Variable::create(g, "v", {.shape = {3}});
  auto read_v = v.value() * 1.0;
  Graph other;
  auto other_x = ad::placeholder(other, DType::Float32, {-1, 3}, "other_x");
  auto other_y = other_x * 2.0;
  ad::Session s(g);
  ad::Session numerics(g, {.check_numerics = true});
  ad::Session capped(g, {.memory_limit_bytes = 1 << 20});
  check_rows({
      row<ad::InvalidArgumentError>("feed float64 to a float32 placeholder",
                                    [&] {
                                      (void)s.eval(y, {{x, Array(DType::Float64, {2, 3})}});
                                    },
                                    {"'x:0'", "float64[2, 3]", "float32[?, 3]"}),
      row<ad::InvalidArgumentError>("feed [2, 4] to [?, 3]",
                                    [&] {
                                      (void)s.eval(y, {{x, f32({2, 4})}});
                                    },
                                    {"'x:0'", "[2, 4]", "[?, 3]"}),
      row<ad::InvalidArgumentError>("feed a rank-3 value to [?, 3]",
                                    [&] {
                                      (void)s.eval(y, {{x, f32({2, 3, 1})}});
                                    },
                                    {"'x:0'", "[2, 3, 1]", "[?, 3]"}),
      row<ad::InvalidArgumentError>("feed a placeholder of another graph",
                                    [&] {
                                      (void)s.eval(y, {{x, f32({2, 3})}, {other_x, f32({2, 3})}});
                                    },
                                    {"other_x", "another graph"}),
      row<ad::InvalidArgumentError>("fetch a tensor of another graph",
                                    [&] {
                                      (void)s.eval(other_y, {{other_x, f32({2, 3})}});
                                    },
                                    {"another graph"}),
      row<ad::InvalidArgumentError>("fetch an empty Tensor", [&] { (void)s.eval(Tensor()); },
                                    {"empty"}),
      row<ad::InvalidArgumentError>("run without feeding a needed placeholder",
                                    [&] { (void)s.eval(y); }, {"must feed", "'x'", "[?, 3]"}),
      row<ad::InvalidArgumentError>("feed one placeholder twice",
                                    [&] {
                                      (void)s.eval(y, {{x, f32({2, 3})}, {x, f32({2, 3})}});
                                    },
                                    {"'x:0'", "twice"}),
      row<ad::InvalidArgumentError>("add of fed [2] and [3]",
                                    [&] {
                                      (void)s.eval(sum_ab, {{a, f32({2})}, {b, f32({3})}});
                                    },
                                    {"Add", "[2]", "[3]"}),
      row<ad::InvalidArgumentError>("matmul of fed [2, 3] with itself",
                                    [&] {
                                      (void)s.eval(mm, {{m, f32({2, 3})}});
                                    },
                                    {"MatMul", "[2, 3]"}),
      row<ad::InvalidArgumentError>("reshape of 6 fed values to [?, 4]",
                                    [&] {
                                      (void)s.eval(reshaped, {{a, f32({6})}});
                                    },
                                    {"Reshape", "[6]", "4"}),
      row<ad::InvalidArgumentError>("sparse softmax cross-entropy with label 3 for 3 classes",
                                    [&] {
                                      (void)s.eval(
                                          xent, {{x, f32({2, 3})},
                                                 {labels, Array::from<std::int64_t>({0, 3}, {2})}});
                                    },
                                    {"label", "3"}),
      row<ad::InvalidArgumentError>(
          "sparse softmax cross-entropy with 3 labels for 2 rows",
          [&] {
            (void)s.eval(xent,
                         {{x, f32({2, 3})}, {labels, Array::from<std::int64_t>({0, 1, 2}, {3})}});
          },
          {"[3]", "[2, 3]"}),
      row<ad::InvalidArgumentError>(
          "fill with fed dims {-1, 3}",
          [&] {
            (void)s.eval(filled, {{dims, Array::from<std::int64_t>({-1, 3}, {2})}});
          },
          {"-1"}),
      row<ad::InvalidArgumentError>(
          "fill with fed dims {2^40, 2^40} (element count overflows int64)",
          [&] {
            (void)s.eval(filled, {{dims, Array::from<std::int64_t>({kHuge, kHuge}, {2})}});
          },
          {node_name(filled), "1099511627776"}),
      row<ad::InvalidArgumentError>(
          "zeros(g, [2^40, 2^40]) (element count overflows int64)",
          [&] { (void)s.eval(huge_zeros); },
          {node_name(huge_zeros), "[1099511627776, 1099511627776]", "int64"}),
      row<ad::ResourceExhaustedError>(
          "fill of 2^40 floats in a session capped at 1 MiB",
          [&] {
            (void)capped.eval(filled,
                              {{dims, Array::from<std::int64_t>(
                                          {std::int64_t{1} << 20, std::int64_t{1} << 20}, {2})}});
          },
          {"memory limit", "[1048576, 1048576]"}),
      row<ad::FailedPreconditionError>("read an uninitialized variable",
                                       [&] { (void)s.eval(read_v); }, {"uninitialized", "'v'"}),
      row<ad::InvalidArgumentError>("check_numerics session: log(0)",
                                    [&] {
                                      (void)numerics.eval(logged, {{a, f32({2}, 0.f)}});
                                    },
                                    {"check_numerics", "Log", "Inf", "a:0"}),
      row<ad::InvalidArgumentError>(
          "check_numerics session: NaN fed into a sum",
          [&] {
            (void)numerics.eval(
                sum_ab, {{a, f32({2}, std::numeric_limits<float>::quiet_NaN())}, {b, f32({2})}});
          },
          {"check_numerics", "Add", "NaN"}),
      row<ad::InvalidArgumentError>(
          "cond fed a non-scalar predicate",
          [&] {
            (void)s.eval(branch, {{a, f32({2})}, {flag, Array(DType::Bool, {2})}});
          },
          {"'flag:0'", "[2]"}),
      row<ad::ValueError>("Session::set_value with another shape",
                          [&] { s.set_value(v, f32({4})); }, {"'v'", "[3]", "[4]"}),
      row<ad::ValueError>("Session::value of a variable of another graph",
                          [&] {
                            auto w = ad::Variable::create(other, "w_other", {.shape = {1}});
                            (void)s.value(w);
                          },
                          {"'w_other'", "another graph"}),
  });
}

BOOST_AUTO_TEST_CASE(bad_layer_arguments_raise_value_errors) {
  Graph g;
  auto x = ad::placeholder(g, DType::Float32, {-1, 4}, "x");
  auto v = ad::placeholder(g, DType::Float32, {4}, "v");
  auto unknown = ad::placeholder(g, DType::Float32, {-1, -1}, "unknown");
  auto images = ad::placeholder(g, DType::Float32, {-1, 8, 8, 3}, "images");
  auto ints = ad::placeholder(g, DType::Int64, {-1, 4}, "ints");
  check_rows({
      row<ad::ValueError>("dense of a rank-1 input",
                          [&] { (void)ad::layers::dense(v, 3, {.name = "fc_rank1"}); },
                          {"fc_rank1", "[4]"}),
      row<ad::ValueError>("dense with 0 units",
                          [&] { (void)ad::layers::dense(x, 0, {.name = "fc_zero"}); },
                          {"fc_zero", "0"}),
      row<ad::ValueError>("dense with an unknown last dim",
                          [&] { (void)ad::layers::dense(unknown, 3, {.name = "fc_unknown"}); },
                          {"fc_unknown", "[?, ?]"}),
      row<ad::ValueError>("dense of an int64 input",
                          [&] { (void)ad::layers::dense(ints, 3, {.name = "fc_int"}); },
                          {"fc_int", "int64"}),
      row<ad::ValueError>("dense reusing a layer with another input width",
                          [&] {
                            ad::layers::Dense layer(3, {.name = "fc_reuse"});
                            (void)layer(x);
                            (void)layer(images);
                          },
                          {"fc_reuse", "4"}),
      row<ad::ValueError>(
          "batch_normalization axis 2 of a rank-2 input",
          [&] { (void)ad::layers::batch_normalization(x, {.axis = 2, .name = "bn_axis"}); },
          {"bn_axis", "2", "[?, 4]"}),
      row<ad::ValueError>(
          "batch_normalization over an unknown feature dim",
          [&] { (void)ad::layers::batch_normalization(unknown, {.name = "bn_unknown"}); },
          {"bn_unknown", "[?, ?]"}),
      row<ad::ValueError>("batch_normalization of an int64 input",
                          [&] { (void)ad::layers::batch_normalization(ints, {.name = "bn_int"}); },
                          {"bn_int", "int64"}),
      row<ad::ValueError>("batch_normalization with virtual_batch_size 0",
                          [&] {
                            (void)ad::layers::batch_normalization(
                                x, {.name = "bn_vbs", .virtual_batch_size = 0});
                          },
                          {"bn_vbs", "virtual_batch_size"}),
      row<ad::ValueError>(
          "batch_normalization with renorm_clipping key 'rmxa'",
          [&] {
            (void)ad::layers::batch_normalization(
                x, {.name = "bn_clip", .renorm = true, .renorm_clipping = {{"rmxa", 3.0}}});
          },
          {"batch_normalization", "renorm_clipping", "rmxa"}),
      row<ad::ValueError>("BatchNormalization called on 3 channels after 4",
                          [&] {
                            ad::layers::BatchNormalization layer({.name = "bn_reuse"});
                            (void)layer(x);
                            (void)layer(images);
                          },
                          {"bn_reuse", "4", "3"}),
      row<ad::ValueError>("dropout with rate 1",
                          [&] { (void)ad::layers::dropout(x, {.rate = 1.0}); }, {"rate", "1"}),
      row<ad::ValueError>("dropout with rate -0.5",
                          [&] { (void)ad::layers::dropout(x, {.rate = -0.5}); }, {"rate", "-0.5"}),
      row<ad::ValueError>("conv2d of a rank-2 input",
                          [&] { (void)ad::layers::conv2d(x, 4, 3, {.name = "conv_rank"}); },
                          {"conv_rank", "[?, 4]"}),
      row<ad::ValueError>("conv2d with 0 filters",
                          [&] { (void)ad::layers::conv2d(images, 0, 3, {.name = "conv_zero"}); },
                          {"conv_zero", "0"}),
  });
}

BOOST_AUTO_TEST_CASE(run_time_layer_mistakes_raise_invalid_argument) {
  Graph g;
  auto x = ad::placeholder(g, DType::Float32, {-1, 4}, "x");
  auto bn = ad::layers::batch_normalization(
      x, {.training = true, .name = "bn_virtual", .virtual_batch_size = 4});
  auto dense = ad::layers::dense(x, 2, {.name = "fc"});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  check_rows({
      row<ad::InvalidArgumentError>("virtual_batch_size 4 with a batch of 6",
                                    [&] {
                                      (void)s.eval(bn, {{x, f32({6, 4})}});
                                    },
                                    {"6", "4"}),
      row<ad::InvalidArgumentError>("dense fed [2, 5] where [?, 4] was declared",
                                    [&] {
                                      (void)s.eval(dense, {{x, f32({2, 5})}});
                                    },
                                    {"'x:0'", "[2, 5]", "[?, 4]"}),
  });
}

BOOST_AUTO_TEST_CASE(bad_optimizer_arguments_raise_value_errors) {
  Graph g;
  auto x = ad::placeholder(g, DType::Float32, {-1, 4}, "x");
  auto w = ad::Variable::create(g, "w", {.shape = {4, 1}});
  auto frozen = ad::Variable::create(g, "frozen", {.shape = {1}, .trainable = false});
  auto loss = ad::reduce_mean(ad::square(ad::matmul(x, w.value())));
  auto constant_loss = ad::reduce_sum(x);
  auto lr_vector = ad::placeholder(g, DType::Float32, {2}, "lr_vector");
  check_rows({
      row<ad::ValueError>("minimize a loss that no variable reaches",
                          [&] { (void)ad::optim::GradientDescent().minimize(constant_loss); },
                          {"gradient"}),
      row<ad::ValueError>("apply_gradients with a [3] gradient for a [4, 1] variable",
                          [&] {
                            auto grad = ad::placeholder(g, DType::Float32, {3}, "grad3");
                            (void)ad::optim::GradientDescent().apply_gradients({{grad, w}});
                          },
                          {"'w'", "[3]", "[4, 1]"}),
      row<ad::ValueError>("apply_gradients with a float64 gradient for a float32 variable",
                          [&] {
                            auto grad = ad::placeholder(g, DType::Float64, {4, 1}, "grad64");
                            (void)ad::optim::Adam().apply_gradients({{grad, w}});
                          },
                          {"'w'", "float64"}),
      row<ad::ValueError>("apply_gradients where no pair has a gradient",
                          [&] {
                            (void)ad::optim::Momentum().apply_gradients({{Tensor(), w}});
                          },
                          {"gradient"}),
      row<ad::ValueError>(
          "learning_rate given as a [2] tensor",
          [&] { (void)ad::optim::GradientDescent({.learning_rate = lr_vector}).minimize(loss); },
          {"lr_vector", "[2]"}),
      row<ad::ValueError>("get_slot of a variable without slots",
                          [&] {
                            ad::optim::Adam adam;
                            (void)adam.minimize(loss);
                            (void)adam.get_slot(frozen, "m");
                          },
                          {"'frozen'", "m"}),
      row<ad::ValueError>("optimizer with an empty name",
                          [&] { (void)ad::optim::Adam({.name = ""}); }, {"name"}),
  });
}

BOOST_AUTO_TEST_CASE(bad_checkpoints_raise_specific_errors) {
  Graph g;
  auto w = ad::Variable::create(g, "w", {.shape = {2, 3}});
  auto step = ad::Variable::create(g, "step", {.shape = {}, .dtype = DType::Int64});
  ad::Saver saver(g);
  ad::Session s(g);
  Graph g2;
  auto w2 = ad::Variable::create(g2, "w", {.shape = {3, 2}});
  auto step2 = ad::Variable::create(g2, "step", {.shape = {}, .dtype = DType::Int64});
  ad::Saver saver2(g2);
  ad::Session s2(g2);
  s2.run({ad::global_variables_initializer(g2)});
  const std::string good = temp_path("good.ckpt");
  saver2.save(s2, good);
  const std::string empty = temp_path("empty.ckpt");
  write_bytes(empty, "");
  const std::string garbage = temp_path("garbage.ckpt");
  write_bytes(garbage, "PK\x03\x04 this is a zip file, not a checkpoint\n");
  std::string truncated_bytes;
  {
    std::ifstream in(good, std::ios::binary);
    truncated_bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string truncated = temp_path("truncated.ckpt");
  write_bytes(truncated, truncated_bytes.substr(0, truncated_bytes.size() - 5));
  Graph empty_graph;
  check_rows({
      row<ad::NotFoundError>("restore a path that does not exist",
                             [&] { saver.restore(s, temp_path("missing.ckpt")); },
                             {"restore", "missing.ckpt"}),
      row<ad::NotFoundError>(
          "restore a directory",
          [&] { saver.restore(s, std::filesystem::temp_directory_path().string()); }, {"restore"}),
      row<ad::NotFoundError>("save into a directory that does not exist",
                             [&] {
                               s.run({ad::global_variables_initializer(g)});
                               saver.save(s, temp_path("no_such_dir/model.ckpt"));
                             },
                             {"save", "no_such_dir"}),
      row<ad::ValueError>("save to an empty path", [&] { saver.save(s, ""); }, {"path"}),
      row<ad::DataLossError>("restore an empty file", [&] { saver.restore(s, empty); },
                             {"empty.ckpt"}),
      row<ad::DataLossError>("restore a file that is not a checkpoint",
                             [&] { saver.restore(s, garbage); },
                             {"garbage.ckpt", "not a gradtape checkpoint"}),
      row<ad::DataLossError>("restore a checkpoint cut 5 bytes short",
                             [&] { saver.restore(s, truncated); }, {"truncated"}),
      row<ad::InvalidArgumentError>("restore [3, 2] into a [2, 3] variable",
                                    [&] { saver.restore(s, good); }, {"'w'", "[3, 2]", "[2, 3]"}),
      row<ad::ValueError>("restore with a session of another graph",
                          [&] { saver.restore(s2, good); }, {"another graph"}),
      row<ad::ValueError>("Saver of a graph without variables",
                          [&] { (void)ad::Saver(empty_graph); }, {"no variables"}),
      row<ad::FailedPreconditionError>("save an uninitialized variable",
                                       [&] {
                                         Graph fresh;
                                         (void)ad::Variable::create(fresh, "u", {.shape = {1}});
                                         ad::Session fresh_session(fresh);
                                         ad::Saver(fresh).save(fresh_session, temp_path("u.ckpt"));
                                       },
                                       {"'u'", "uninitialized"}),
  });
  (void)w;
  (void)step;
  (void)w2;
  (void)step2;
  for (const auto& p : {good, empty, garbage, truncated}) std::filesystem::remove(p);
}

BOOST_AUTO_TEST_CASE(bad_data_files_and_arguments_raise_specific_errors) {
  const std::string csv = temp_path("bad.csv");
  write_bytes(csv, "1,2,0\n3,x,1\n");
  const std::string csv_label = temp_path("label.csv");
  write_bytes(csv_label, "1,2,0\n3,4,12\n");
  const std::string idx = temp_path("labels.idx");
  write_bytes(idx, std::string("\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02", 10));
  const std::string idx4 = temp_path("labels4.idx");
  write_bytes(idx4, std::string("\x00\x00\x08\x01\x00\x00\x00\x04\x01\x02\x03\x04", 12));
  // IDX images whose dims multiply past 2^64 (2^31 * 2^31 * 4) but would wrap to a tiny count.
  const std::string idx_overflow = temp_path("overflow.idx");
  write_bytes(idx_overflow,
              std::string("\x00\x00\x08\x03\x00\x00\x00\x04\x80\x00\x00\x00\x80\x00\x00\x00", 16));
  // 0 images of 2^32-1 x 2^32-1 pixels: no bytes, but rows * cols overflows.
  const std::string idx_zero = temp_path("zero.idx");
  write_bytes(idx_zero,
              std::string("\x00\x00\x08\x03\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff", 16));
  const std::string idx_none = temp_path("labels0.idx");
  write_bytes(idx_none, std::string("\x00\x00\x08\x01\x00\x00\x00\x00", 8));
  ad::data::Dataset tiny{
      .features = f32({2, 2}), .labels = Array::from<std::int64_t>({0, 1}, {2}), .num_classes = 2};
  check_rows({
      row<ad::NotFoundError>("load_csv of a missing file",
                             [] { (void)ad::data::load_csv(temp_path("missing.csv")); },
                             {"load_csv", "missing.csv"}),
      row<ad::DataLossError>("load_csv with a field that is not a number",
                             [&] { (void)ad::data::load_csv(csv); }, {"load_csv", "line 2", "'x'"}),
      row<ad::InvalidArgumentError>("load_csv with label 12 of 10 classes",
                                    [&] { (void)ad::data::load_csv(csv_label); }, {"line 2", "12"}),
      row<ad::DataLossError>("load_digits_csv of a 3-field file",
                             [&] { (void)ad::data::load_digits_csv(csv_label); },
                             {"load_digits_csv", "65"}),
      row<ad::DataLossError>("load_mnist_idx with images and labels swapped",
                             [&] { (void)ad::data::load_mnist_idx(idx, idx); }, {"swapped"}),
      row<ad::DataLossError>("load_mnist_idx with dims whose product overflows",
                             [&] { (void)ad::data::load_mnist_idx(idx_overflow, idx4); },
                             {"overflow.idx", "[4, 2147483648, 2147483648]"}),
      row<ad::DataLossError>("load_mnist_idx of 0 images whose rows * cols overflows",
                             [&] { (void)ad::data::load_mnist_idx(idx_zero, idx_none); },
                             {"zero.idx", "[0, 4294967295, 4294967295]"}),
      row<ad::ValueError>("BatchIterator with batch_size 0",
                          [&] { (void)ad::data::BatchIterator(tiny, {.batch_size = 0}); },
                          {"batch_size"}),
      row<ad::ValueError>("train_test_split with fraction 1.5",
                          [&] { (void)ad::data::train_test_split(tiny, 1.5, 0); }, {"1.5"}),
      row<ad::OutOfRangeError>("Dataset::rows with row 7 of 2",
                               [&] {
                                 const std::int64_t rows[] = {7};
                                 (void)tiny.rows(rows);
                               },
                               {"7"}),
  });
  for (const auto& p : {csv, csv_label, idx, idx4, idx_overflow, idx_zero, idx_none})
    std::filesystem::remove(p);
}

// Runs last (Boost.Test runs cases in declaration order): the number of rows, for the report.
BOOST_AUTO_TEST_CASE(table_size) {
  BOOST_TEST_MESSAGE("bad-input rows checked: " << rows_checked);
  BOOST_TEST(rows_checked >= 100);
}

BOOST_AUTO_TEST_SUITE_END()
