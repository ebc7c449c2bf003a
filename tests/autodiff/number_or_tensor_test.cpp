// ad::NumberOrTensor (autodiff/number_or_tensor.h), the one type for arguments that are a number or
// a Tensor: which alternative it holds, conversion to a tensor of a given dtype (a number converted
// once from double, a tensor cast only when its dtype differs), and the errors of the accessors.
// The aliases that use it (optim::Hyperparameter, layers::ScalarArg, losses::Weights) accept both.
#include "autodiff/number_or_tensor.h"

#include <boost/test/unit_test.hpp>

#include "autodiff/error.h"
#include "autodiff/graph.h"
#include "autodiff/ops/basic.h"
#include "autodiff/session.h"
#include "layers/batch_normalization.h"
#include "layers/losses.h"
#include "optim/optimizer.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;

BOOST_AUTO_TEST_SUITE(number_or_tensor_test)

BOOST_AUTO_TEST_CASE(a_number_becomes_a_constant_of_the_asked_dtype) {
  ad::Graph g;
  const ad::NumberOrTensor v = 0.1;
  BOOST_TEST(v.is_number());
  BOOST_TEST(!v.is_tensor());
  BOOST_TEST(v.number() == 0.1);
  BOOST_TEST(v.if_tensor() == nullptr);
  const auto as_float = v.to_tensor(g, ad::DType::Float32);
  const auto as_double = v.to_tensor(g, ad::DType::Float64);
  BOOST_TEST(as_float.dtype() == ad::DType::Float32);
  BOOST_TEST(as_float.shape().rank() == 0);
  ad::Session s(g);
  const auto out = s.run({as_float, as_double});
  // Converted once from the double: 0.1f exactly, not a double rounded twice.
  BOOST_TEST(out[0].flat(0) == static_cast<double>(0.1f));
  BOOST_TEST(out[1].flat(0) == 0.1);
  BOOST_CHECK_EXCEPTION((void)v.tensor(), ad::ValueError,
                        (MessageHas{{"0.1", "is a number, not a tensor"}}));
}

BOOST_AUTO_TEST_CASE(a_tensor_is_cast_only_when_its_dtype_differs) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float64, {}, "x");
  const ad::NumberOrTensor v = x;
  BOOST_TEST(v.is_tensor());
  BOOST_TEST(v.if_number() == nullptr);
  BOOST_TEST(v.tensor().name() == x.name());
  BOOST_TEST(v.to_tensor(g, ad::DType::Float64).name() == x.name());  // the same node, no cast
  const auto cast = v.to_tensor(g, ad::DType::Float32);
  BOOST_TEST(cast.dtype() == ad::DType::Float32);
  ad::Session s(g);
  BOOST_TEST(s.run({cast}, {{x, ad::Array::scalar(1.0 / 3.0)}})[0].flat(0) ==
             static_cast<double>(static_cast<float>(1.0 / 3.0)));
  BOOST_CHECK_EXCEPTION((void)v.number(), ad::ValueError,
                        (MessageHas{{"'x:0'", "is a tensor, not a number"}}));
}

BOOST_AUTO_TEST_CASE(the_argument_types_of_optimizers_batch_norm_and_losses_are_this_type) {
  ad::Graph g;
  const auto rate = ad::placeholder(g, ad::DType::Float32, {}, "rate");
  const ad::optim::Hyperparameter lr = rate;
  const ad::layers::ScalarArg momentum = 0.9;
  const ad::losses::Weights weights = rate;
  const ad::NumberOrTensor* as_base[] = {&lr, &momentum, &weights};
  BOOST_TEST(as_base[0]->is_tensor());
  BOOST_TEST(as_base[1]->number() == 0.9);
  BOOST_TEST(as_base[2]->tensor().name() == rate.name());
  // Hyperparameter keeps its own check: a floating scalar.
  const auto matrix = ad::placeholder(g, ad::DType::Float32, {2, 2}, "matrix");
  BOOST_CHECK_EXCEPTION(ad::optim::Hyperparameter{matrix}, ad::ValueError,
                        (MessageHas{{"Hyperparameter", "must be a floating scalar", "[2, 2]"}}));
}

BOOST_AUTO_TEST_SUITE_END()
