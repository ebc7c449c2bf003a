// ad::losses: each loss against closed forms computed here, with every reduction and with scalar,
// per-example, broadcast and zero weights; label smoothing; the LOSSES collection; get_total_loss
// with regularization; gradients; error texts.
#include "layers/losses.h"

#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autodiff/autodiff.h"
#include "layers/dense.h"
#include "tests/support/gradient_check.h"

namespace L = ad::losses;
using ad::testing::MessageHas;
using ad::testing::random_array;
using R = ad::losses::Reduction;

namespace {

const std::vector<double> kLogits{2.0, -1.0, 0.5, 0.1, 0.2, 3.0, -2.0, 1.5, 0.0, 1.0, 1.0, 1.0};
const std::vector<std::int64_t> kLabels{0, 2, 1, 2};

double logsumexp(const double* z, int n) {
  double m = z[0];
  for (int i = 1; i < n; ++i) m = std::max(m, z[i]);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(z[i] - m);
  return m + std::log(s);
}

// Per-example softmax cross-entropy against soft labels q.
std::vector<double> xent(const std::vector<double>& q) {
  std::vector<double> out;
  for (int r = 0; r < 4; ++r) {
    const double* z = &kLogits[static_cast<std::size_t>(r * 3)];
    const double lse = logsumexp(z, 3);
    double l = 0;
    for (int c = 0; c < 3; ++c) l -= q[static_cast<std::size_t>(r * 3 + c)] * (z[c] - lse);
    out.push_back(l);
  }
  return out;
}

std::vector<double> onehot(double smoothing) {
  std::vector<double> q(12, smoothing / 3);
  for (int r = 0; r < 4; ++r)
    q[static_cast<std::size_t>(r * 3 + kLabels[static_cast<std::size_t>(r)])] += 1 - smoothing;
  return q;
}

struct Fixture {
  ad::Graph g;
  ad::Tensor logits = ad::constant(g, ad::Array::from(kLogits, {4, 3}));
  ad::Tensor labels = ad::constant(g, ad::Array::from(kLabels, {4}));
  ad::Session session{g};
  double eval(const ad::Tensor& t) { return session.eval(t).item<double>(); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(losses_test)

BOOST_AUTO_TEST_CASE(sparse_softmax_cross_entropy_reductions_and_weights) {
  Fixture f;
  const auto l = xent(onehot(0));
  const auto tol = boost::test_tools::tolerance(1e-12);
  BOOST_TEST(f.eval(L::sparse_softmax_cross_entropy(f.labels, f.logits)) ==
                 (l[0] + l[1] + l[2] + l[3]) / 4,
             tol);
  BOOST_TEST(f.eval(L::sparse_softmax_cross_entropy(f.labels, f.logits, {.weights = 2.0})) ==
                 2 * (l[0] + l[1] + l[2] + l[3]) / 4,
             tol);
  BOOST_TEST(f.eval(L::sparse_softmax_cross_entropy(f.labels, f.logits, {.weights = 0.0})) == 0.0);
  const auto w = ad::constant(f.g, ad::Array::from<double>({1, 0, 2, 0}, {4}));
  const double weighted_sum = l[0] + 2 * l[2];
  auto with = [&](R reduction) {
    return L::sparse_softmax_cross_entropy(f.labels, f.logits,
                                           {.weights = w, .reduction = reduction});
  };
  BOOST_TEST(f.eval(with(R::kSumByNonzeroWeights)) == weighted_sum / 2, tol);
  BOOST_TEST(f.eval(with(R::kMean)) == weighted_sum / 3, tol);
  BOOST_TEST(f.eval(with(R::kSum)) == weighted_sum, tol);
  BOOST_TEST(f.eval(with(R::kSumOverBatchSize)) == weighted_sum / 4, tol);
  const auto none = f.session.eval(with(R::kNone));
  BOOST_TEST(none.shape() == ad::Shape({4}));
  BOOST_TEST(none.flat(0) == l[0], tol);
  BOOST_TEST(none.flat(1) == 0.0);
  BOOST_TEST(none.flat(2) == 2 * l[2], tol);
  // [batch, 1] weights and labels are squeezed, as TF does.
  const auto w_col = ad::constant(f.g, ad::Array::from<double>({1, 0, 2, 0}, {4, 1}));
  const auto labels_col = ad::reshape(f.labels, ad::Shape{4, 1});
  BOOST_TEST(f.eval(L::sparse_softmax_cross_entropy(labels_col, f.logits, {.weights = w_col})) ==
                 weighted_sum / 2,
             tol);
  // All-zero weights: 0, not NaN.
  const auto zeros = ad::constant(f.g, ad::Array::full(ad::DType::Float64, {4}, 0.0));
  BOOST_TEST(f.eval(L::sparse_softmax_cross_entropy(f.labels, f.logits, {.weights = zeros})) ==
             0.0);
}

BOOST_AUTO_TEST_CASE(sparse_labels_of_higher_rank) {
  ad::Graph g;
  auto logits = ad::constant(g, ad::Array::from(kLogits, {2, 2, 3}));
  auto labels = ad::constant(g, ad::Array::from(kLabels, {2, 2}));
  auto loss = L::sparse_softmax_cross_entropy(labels, logits, {.reduction = R::kNone});
  BOOST_TEST(loss.shape() == ad::Shape({2, 2}));
  ad::Session s(g);
  const auto v = s.eval(loss);
  const auto l = xent(onehot(0));
  for (int i = 0; i < 4; ++i)
    BOOST_TEST(v.flat(i) == l[static_cast<std::size_t>(i)], boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_with_label_smoothing) {
  Fixture f;
  const auto labels =
      ad::constant(f.g, ad::Array::from(onehot(0), {4, 3}).astype(ad::DType::Float32));
  const auto tol = boost::test_tools::tolerance(1e-12);
  const auto plain = xent(onehot(0));
  const auto smooth = xent(onehot(0.1));
  BOOST_TEST(f.eval(L::softmax_cross_entropy(labels, f.logits)) ==
                 (plain[0] + plain[1] + plain[2] + plain[3]) / 4,
             tol);
  BOOST_TEST(f.eval(L::softmax_cross_entropy(labels, f.logits, {.label_smoothing = 0.1})) ==
                 (smooth[0] + smooth[1] + smooth[2] + smooth[3]) / 4,
             tol);
  // No gradient reaches the labels (TF1 stops it); the logits get softmax - labels.
  ad::Graph g;
  auto y = ad::placeholder(g, ad::DType::Float64, {2, 3}, "y");
  auto z = ad::placeholder(g, ad::DType::Float64, {2, 3}, "z");
  const auto grads =
      ad::gradients(L::softmax_cross_entropy(y, z, {.label_smoothing = 0.2}), {y, z});
  BOOST_TEST(!grads[0]);
  BOOST_TEST(static_cast<bool>(grads[1]));
}

BOOST_AUTO_TEST_CASE(sigmoid_cross_entropy_with_broadcast_weights_and_smoothing) {
  Fixture f;
  const std::vector<double> z01{1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1};
  const auto labels = ad::constant(f.g, ad::Array::from(z01, {4, 3}));
  const auto w = ad::constant(f.g, ad::Array::from<double>({1, 0, 3, 0.5}, {4, 1}));
  auto elementwise = [&](double s) {
    std::vector<double> out;
    for (std::size_t i = 0; i < 12; ++i) {
      const double x = kLogits[i];
      const double t = z01[i] * (1 - s) + 0.5 * s;
      out.push_back(std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))));
    }
    return out;
  };
  const auto e = elementwise(0.2);
  const double row_w[] = {1, 0, 3, 0.5};
  double sum = 0;
  for (std::size_t i = 0; i < 12; ++i) sum += row_w[i / 3] * e[i];
  const auto tol = boost::test_tools::tolerance(1e-12);
  // Weights [4, 1] broadcast over the 3 classes: 9 nonzero weights, weight sum 4.5 * 3.
  BOOST_TEST(f.eval(L::sigmoid_cross_entropy(labels, f.logits,
                                             {.weights = w, .label_smoothing = 0.2})) == sum / 9,
             tol);
  BOOST_TEST(f.eval(L::sigmoid_cross_entropy(
                 labels, f.logits,
                 {.weights = w, .label_smoothing = 0.2, .reduction = R::kMean})) == sum / 13.5,
             tol);
  const auto plain = elementwise(0);
  double total = 0;
  for (double v : plain) total += v;
  BOOST_TEST(f.eval(L::sigmoid_cross_entropy(labels, f.logits)) == total / 12, tol);
}

BOOST_AUTO_TEST_CASE(regression_losses_match_closed_forms) {
  ad::Graph g;
  const std::vector<double> p{0.5, -1.0, 2.0, 3.5};
  const std::vector<double> t{1.0, 1.0, 1.5, 0.0};
  auto pred = ad::constant(g, ad::Array::from(p, {2, 2}));
  auto labels = ad::constant(g, ad::Array::from(t, {2, 2}).astype(ad::DType::Float32));
  ad::Session s(g);
  double mse = 0;
  double mae = 0;
  double huber = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const double e = p[i] - t[i];
    mse += e * e / 4;
    mae += std::abs(e) / 4;
    huber += (std::abs(e) <= 1 ? 0.5 * e * e : std::abs(e) - 0.5) / 4;
  }
  const auto tol = boost::test_tools::tolerance(1e-12);
  BOOST_TEST(s.eval(L::mean_squared_error(labels, pred)).item<double>() == mse, tol);
  BOOST_TEST(s.eval(L::absolute_difference(labels, pred)).item<double>() == mae, tol);
  BOOST_TEST(s.eval(L::huber_loss(labels, pred)).item<double>() == huber, tol);
  auto w = ad::constant(g, ad::Array::from<double>({2, 0}, {2, 1}));
  const double weighted = 2 * ((p[0] - t[0]) * (p[0] - t[0]) + (p[1] - t[1]) * (p[1] - t[1]));
  BOOST_TEST(s.eval(L::mean_squared_error(labels, pred, {.weights = w, .reduction = R::kSum}))
                     .item<double>() == weighted,
             tol);
}

BOOST_AUTO_TEST_CASE(losses_are_collected_and_totalled_with_regularization) {
  ad::Graph g;
  auto x = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "x");
  auto labels = ad::placeholder(g, ad::DType::Int64, {-1}, "labels");
  auto logits =
      ad::layers::dense(x, 4, {.kernel_regularizer = ad::regularizers::l2(0.5), .name = "fc"});
  auto xent = L::sparse_softmax_cross_entropy(labels, logits);
  auto mse = L::mean_squared_error(ad::zeros_like(logits), logits, {.weights = 0.1});
  (void)L::mean_squared_error(logits, logits, {.loss_collection = ""});
  BOOST_TEST(L::get_losses(g).size() == 2u);
  BOOST_TEST(L::get_regularization_losses(g).size() == 1u);
  auto total = L::get_total_loss(g);
  auto data_only = L::get_total_loss(g, false);
  auto reg = L::get_regularization_loss(g);
  BOOST_TEST(total.op().name == "total_loss");
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  const ad::FeedDict feeds{{x, random_array({5, 3}, 1).astype(ad::DType::Float32)},
                           {labels, ad::Array::from<std::int64_t>({0, 1, 2, 3, 0}, {5})}};
  const auto r = s.run({total, data_only, reg, xent, mse}, feeds);
  const auto kernel = s.value(ad::global_variables(g)[0]);
  double l2 = 0;
  for (float v : kernel.data<float>()) l2 += 0.5 * static_cast<double>(v) * v;
  BOOST_TEST(r[2].item<float>() == l2, boost::test_tools::tolerance(1e-5));
  BOOST_TEST(r[1].item<float>() == r[3].item<float>() + r[4].item<float>(),
             boost::test_tools::tolerance(1e-6));
  BOOST_TEST(r[0].item<float>() == r[1].item<float>() + r[2].item<float>(),
             boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  const auto labels = ad::Array::from(kLabels, {4});
  const auto w = ad::Array::from<double>({1, 0, 2, 0.5}, {4});
  ad::testing::check_gradient(
      [&](const auto& t) {
        auto& g = t[0].graph();
        return L::sparse_softmax_cross_entropy(ad::constant(g, labels), t[0],
                                               {.weights = ad::constant(g, w)});
      },
      {random_array({4, 3}, 2)}, 1e-6, true);
  ad::testing::check_gradient(
      [&](const auto& t) {
        return L::softmax_cross_entropy(
            ad::constant(t[0].graph(), ad::Array::from(onehot(0), {4, 3})), t[0],
            {.label_smoothing = 0.1, .reduction = R::kMean});
      },
      {random_array({4, 3}, 3)}, 1e-6, true);
  ad::testing::check_gradient(
      [&](const auto& t) {
        return L::sigmoid_cross_entropy(t[1], t[0], {.weights = 0.5, .reduction = R::kSum});
      },
      {random_array({4, 3}, 4), random_array({4, 3}, 5, 0, 1)}, 1e-6, true);
  ad::testing::check_gradient(
      [&](const auto& t) { return L::mean_squared_error(t[1], t[0], {.weights = t[2]}); },
      {random_array({4, 3}, 6), random_array({4, 3}, 7), random_array({4, 1}, 8, 0.5, 2)}, 1e-6,
      true);
  ad::testing::check_gradient([&](const auto& t) { return L::huber_loss(t[1], t[0], {}, 0.5); },
                              {random_array({4, 3}, 9, -2, 2), random_array({4, 3}, 10)}, 1e-6,
                              false);
}

BOOST_AUTO_TEST_CASE(errors_name_the_loss_and_shapes) {
  ad::Graph g;
  auto logits = ad::placeholder(g, ad::DType::Float32, {-1, 3}, "logits");
  auto wrong = ad::placeholder(g, ad::DType::Float32, {-1, 4}, "wrong");
  BOOST_CHECK_EXCEPTION((void)L::softmax_cross_entropy(wrong, logits), ad::ValueError,
                        (MessageHas{{"softmax_cross_entropy", "[?, 4]", "[?, 3]", "same shape"}}));
  auto float_labels = ad::placeholder(g, ad::DType::Float32, {-1}, "float_labels");
  BOOST_CHECK_EXCEPTION((void)L::sparse_softmax_cross_entropy(float_labels, logits), ad::ValueError,
                        (MessageHas{{"sparse_softmax_cross_entropy", "int64", "[?, 3]"}}));
  auto labels = ad::placeholder(g, ad::DType::Int64, {4}, "labels");
  auto fixed = ad::placeholder(g, ad::DType::Float32, {4, 3}, "fixed");
  auto bad_w = ad::placeholder(g, ad::DType::Float32, {3}, "bad_w");
  BOOST_CHECK_EXCEPTION((void)L::sparse_softmax_cross_entropy(labels, fixed, {.weights = bad_w}),
                        ad::ValueError,
                        (MessageHas{{"weights", "[3]", "cannot be broadcast", "[4]"}}));
  BOOST_CHECK_EXCEPTION((void)L::softmax_cross_entropy(fixed, fixed, {.label_smoothing = 1.5}),
                        ad::ValueError, (MessageHas{{"label_smoothing", "[0, 1]", "1.5"}}));
  ad::Graph empty;
  BOOST_CHECK_EXCEPTION((void)L::get_total_loss(empty), ad::ValueError,
                        (MessageHas{{"get_total_loss", "no losses"}}));
  (void)L::mean_squared_error(fixed, fixed, {.reduction = R::kNone});
  BOOST_CHECK_EXCEPTION((void)L::get_total_loss(g), ad::ValueError,
                        (MessageHas{{"get_total_loss", "[4, 3]", "kNone"}}));
}

BOOST_AUTO_TEST_SUITE_END()
