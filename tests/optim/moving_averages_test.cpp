// ExponentialMovingAverage: shadow values against the closed form
// s_T = prod(d) * s_0 + sum_i (1 - d_i) * prod_{j>i} d_j * x_i, with a fixed decay, with
// num_updates, for float32 and float64 (whose decay TF computes in float32), with zero debias;
// names, collections and variables_to_restore as TF r2.4 defines them.
#include "optim/moving_averages.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "autodiff/autodiff.h"

namespace {

using ad::optim::ExponentialMovingAverage;

// The values the variable takes before each update.
const std::vector<std::vector<double>> kSteps = {
    {1.0, -2.0}, {3.5, 0.25}, {-1.0, 4.0}, {2.0, 2.0}, {0.5, -0.75}};
const std::vector<double> kInitial = {0.5, 1.5};

ad::Array to_array(const std::vector<double>& v, ad::DType dtype) {
  return ad::Array::from(v, ad::Shape{static_cast<std::int64_t>(v.size())}).astype(dtype);
}

std::vector<double> to_doubles(const ad::Array& a) {
  const ad::Array d = a.astype(ad::DType::Float64);
  const auto span = d.data<double>();
  return {span.begin(), span.end()};
}

// The shadow after every step, from the closed form with the decays `d` (one per step).
std::vector<double> closed_form(const std::vector<double>& d, std::size_t element) {
  double value = kInitial[element];
  for (const double di : d) value *= di;  // prod(d) * s_0
  for (std::size_t i = 0; i < d.size(); ++i) {
    double weight = 1.0 - d[i];
    for (std::size_t j = i + 1; j < d.size(); ++j) weight *= d[j];
    value += weight * kSteps[i][element];
  }
  return {value};
}

// TF computes 1 - decay in float32 whatever the variable's dtype: the decay really applied.
double effective_decay(double decay) {
  const float one_minus = 1.0F - static_cast<float>(decay);
  return 1.0 - static_cast<double>(one_minus);
}

void check_against_closed_form(ad::DType dtype, bool with_num_updates, double tolerance) {
  ad::Graph g;
  const auto w =
      ad::Variable::create(g, "w",
                           {.shape = {2},
                            .dtype = dtype,
                            .initializer = ad::initializers::constant(to_array(kInitial, dtype))});
  const auto step = ad::placeholder(g, ad::DType::Int64, {}, "step");
  ExponentialMovingAverage ema(0.99, {.num_updates = with_num_updates ? step : ad::Tensor()});
  const auto update = ema.apply({w});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(to_doubles(s.value(ema.average(w))) == kInitial, boost::test_tools::per_element());
  std::vector<double> decays;
  for (std::size_t t = 0; t < kSteps.size(); ++t) {
    s.set_value(w, to_array(kSteps[t], dtype));
    const auto n = static_cast<std::int64_t>(t * 3);  // num_updates 0, 3, 6, 9, 12
    s.run({update}, {{step, ad::Array::scalar<std::int64_t>(n)}});
    double d = 0.99;
    if (with_num_updates) {
      const auto nf = static_cast<float>(n);
      d = std::min(d, static_cast<double>(static_cast<float>((1.0F + nf) / (10.0F + nf))));
    }
    decays.push_back(effective_decay(d));
    const auto got = to_doubles(s.value(ema.average(w)));
    for (std::size_t e = 0; e < 2; ++e) {
      BOOST_TEST(got[e] == closed_form(decays, e)[0], boost::test_tools::tolerance(tolerance));
    }
  }
  // The variable itself is untouched by the update.
  BOOST_TEST(to_doubles(s.value(w)) == kSteps.back(), boost::test_tools::per_element());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(moving_averages_test)

BOOST_AUTO_TEST_CASE(fixed_decay_matches_the_closed_form) {
  check_against_closed_form(ad::DType::Float64, false, 1e-13);
  check_against_closed_form(ad::DType::Float32, false, 1e-6);
}

BOOST_AUTO_TEST_CASE(num_updates_caps_the_decay_as_tf_does) {
  check_against_closed_form(ad::DType::Float64, true, 1e-13);
  check_against_closed_form(ad::DType::Float32, true, 1e-6);
}

BOOST_AUTO_TEST_CASE(a_decay_tensor_is_read_at_run_time) {
  ad::Graph g;
  const auto w = ad::Variable::create(g, "w", {.shape = {}, .dtype = ad::DType::Float64});
  const auto decay = ad::placeholder(g, ad::DType::Float32, {}, "decay");
  ExponentialMovingAverage ema(decay);
  const auto update = ema.apply({w});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  s.set_value(w, ad::Array::scalar(10.0));
  s.run({update}, {{decay, ad::Array::scalar(0.75F)}});
  BOOST_TEST(s.value(ema.average(w)).item<double>() == 2.5);  // 0.75 * 0 + 0.25 * 10, exact
  s.run({update}, {{decay, ad::Array::scalar(0.5F)}});
  BOOST_TEST(s.value(ema.average(w)).item<double>() == 6.25);  // 0.5 * 2.5 + 0.5 * 10
}

BOOST_AUTO_TEST_CASE(zero_debias_divides_by_one_minus_decay_to_the_t) {
  ad::Graph g;
  const auto x = ad::placeholder(g, ad::DType::Float64, {2}, "x");
  const auto loss = ad::identity(x, "loss");
  ExponentialMovingAverage ema(0.9, {.zero_debias = true});
  const auto update = ema.apply(std::vector<ad::Tensor>{loss});
  const auto shadow = ema.average(loss);
  BOOST_TEST(shadow.name() == "loss/ExponentialMovingAverage");
  BOOST_TEST(g.find_variable("loss/ExponentialMovingAverage/biased") >= 0);
  BOOST_TEST(g.find_variable("loss/ExponentialMovingAverage/local_step") >= 0);
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const double d = effective_decay(0.9);
  for (std::size_t t = 1; t <= kSteps.size(); ++t) {
    s.run({update}, {{x, to_array(kSteps[t - 1], ad::DType::Float64)}});
    const auto got = to_doubles(s.value(shadow));
    for (std::size_t e = 0; e < 2; ++e) {
      double biased = 0;
      for (std::size_t i = 0; i < t; ++i) {
        biased += (1.0 - d) * std::pow(d, static_cast<double>(t - 1 - i)) * kSteps[i][e];
      }
      const double expected = biased / (1.0 - std::pow(d, static_cast<double>(t)));
      BOOST_TEST(got[e] == expected, boost::test_tools::tolerance(1e-12));
    }
  }
  // Without debiasing the first average of a tensor is (1 - d) * x.
  ad::Graph g2;
  const auto y = ad::placeholder(g2, ad::DType::Float64, {}, "y");
  ExponentialMovingAverage plain(0.9);
  const auto update2 = plain.apply(std::vector<ad::Tensor>{y});
  ad::Session s2(g2);
  s2.run({ad::global_variables_initializer(g2)});
  s2.run({update2}, {{y, ad::Array::scalar(4.0)}});
  BOOST_TEST(s2.value(plain.average(y)).item<double>() == (1.0 - d) * 4.0,
             boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(shadows_are_named_collected_and_not_trainable_as_in_tf) {
  ad::Graph g;
  const auto w = ad::get_variable(g, "dense/kernel", {.shape = {3, 2}});
  const auto b = ad::get_variable(g, "dense/bias", {.shape = {2}});
  ExponentialMovingAverage ema(0.999);
  (void)ema.apply(g);
  BOOST_TEST(ema.average(w).name() == "dense/kernel/ExponentialMovingAverage");
  BOOST_TEST(ema.average_name(b) == "dense/bias/ExponentialMovingAverage");
  BOOST_TEST(!ema.average(w).trainable());
  BOOST_TEST(ad::trainable_variables(g).size() == 2U);
  BOOST_TEST(ad::global_variables(g).size() == 4U);
  // TF puts the averaged variables (not the shadows) in MOVING_AVERAGE_VARIABLES.
  const auto averaged = ad::variables_in_collection(g, ad::GraphKeys::MOVING_AVERAGE_VARIABLES);
  BOOST_TEST(averaged.size() == 2U);
  BOOST_TEST(averaged[0].name() == "dense/kernel");
  BOOST_CHECK_EXCEPTION((void)ema.apply({w}), ad::ValueError, [](const ad::ValueError& e) {
    return std::string(e.what()) == "Moving average already computed for: dense/kernel";
  });
  const auto other = ad::get_variable(g, "other", {.shape = {}});
  BOOST_TEST(!ema.average(other));
}

BOOST_AUTO_TEST_CASE(variables_to_restore_maps_average_names_to_the_model_variables) {
  ad::Graph g;
  const auto w = ad::get_variable(g, "w", {.shape = {2}});
  (void)ad::get_variable(g, "global_step",
                         {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ExponentialMovingAverage ema(0.9);
  (void)ema.apply({w});
  const auto map = ema.variables_to_restore();
  BOOST_TEST(map.size() == 2U);
  BOOST_TEST(map.at("w/ExponentialMovingAverage").name() == "w");
  BOOST_TEST(map.at("global_step").name() == "global_step");
  // A fresh evaluation graph without apply(): the same names.
  ad::Graph eval;
  (void)ad::get_variable(eval, "w", {.shape = {2}});
  (void)ad::get_variable(eval, "global_step",
                         {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  const ExponentialMovingAverage eval_ema(0.9);
  const auto eval_map = eval_ema.variables_to_restore(eval);
  BOOST_TEST(eval_map.size() == 2U);
  BOOST_TEST(eval_map.at("w/ExponentialMovingAverage").name() == "w");
  BOOST_TEST(eval_map.at("global_step").name() == "global_step");
}

BOOST_AUTO_TEST_CASE(apply_under_control_dependencies_leaves_the_initializer_free_of_them) {
  ad::Graph g;
  const auto w = ad::Variable::create(
      g, "w", {.shape = {}, .dtype = ad::DType::Float64, .initializer = ad::initializers::ones()});
  const auto train = w.assign_add(ad::scalar(g, 1.0, ad::DType::Float64));
  ExponentialMovingAverage ema(0.5);
  ad::Tensor update;
  {
    const ad::ControlDependencies deps{train};
    update = ema.apply({w});
  }
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_TEST(s.value(w).item<double>() == 1.0);  // the initializer did not train
  BOOST_TEST(s.value(ema.average(w)).item<double>() == 1.0);
  s.run({update});  // trains first, then averages the new value
  BOOST_TEST(s.value(w).item<double>() == 2.0);
  BOOST_TEST(s.value(ema.average(w)).item<double>() == 1.5);
}

BOOST_AUTO_TEST_CASE(rejects_integer_variables_and_empty_lists) {
  ad::Graph g;
  const auto n = ad::get_variable(g, "n", {.shape = {}, .dtype = ad::DType::Int64});
  ExponentialMovingAverage ema(0.9);
  BOOST_CHECK_THROW((void)ema.apply({n}), ad::ValueError);
  BOOST_CHECK_THROW((void)ema.apply(std::vector<ad::Variable>{}), ad::ValueError);
  BOOST_CHECK_THROW((void)ExponentialMovingAverage(0.9).variables_to_restore(), ad::ValueError);
}

BOOST_AUTO_TEST_SUITE_END()
