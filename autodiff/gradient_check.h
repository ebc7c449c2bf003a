// compute_gradient_error: compares reverse-mode gradients with central finite differences in
// float64, as TF's tf.test.compute_gradient_error does, on a random projection of the output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/session.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"

namespace ad {

struct GradientCheckOptions {
  double delta = 1e-5;        // finite-difference step
  std::uint64_t seed = 1234;  // of the random projection
};

struct GradientCheckResult {
  // max over elements of |symbolic - numeric| / max(1, |numeric|)
  double max_error = 0;
  double max_abs_error = 0;
  // The worst element: which x, which index, both values.
  std::string worst;
  std::size_t elements_checked = 0;
};

// Feeds xs (float64 tensors that can be fed, such as placeholders) with x_values, projects y on a
// random tensor r, and compares d(r·y)/dx from gradients() with central differences of r·y.
// `feeds` supplies any other placeholders y needs; variables must be initialized in `session`.
[[nodiscard]] GradientCheckResult compute_gradient_error(
    Session& session, const std::vector<Tensor>& xs, const std::vector<Array>& x_values,
    const Tensor& y, const FeedDict& feeds = {}, const GradientCheckOptions& options = {});

// The same for variables (float64, initialized in `session`): each element of each variable is
// moved by +-delta in the session and put back, so the variables end as they started.
[[nodiscard]] GradientCheckResult compute_gradient_error(Session& session,
                                                         const std::vector<Variable>& vars,
                                                         const Tensor& y,
                                                         const FeedDict& feeds = {},
                                                         const GradientCheckOptions& options = {});

}  // namespace ad
