// Weight constraints (Keras r2.4 formulas, eps = 1e-7): callables Tensor -> Tensor built from ops.
// A variable stores its constraint; optimizers record var.assign(constraint(var.value())) right
// after that variable's update. Any user lambda Tensor -> Tensor works the same way.
#pragma once

#include <vector>

#include "gradtape/autodiff/graph.h"

namespace ad::constraints {

// Keras's epsilon, added to norms before dividing by them.
inline constexpr double kEpsilon = 1e-7;

// w * [w >= 0]: negative entries become 0.
[[nodiscard]] Constraint non_neg();
// With n = sqrt(sum of w^2 over `axis`, keepdims): w * (clip(n, 0, max_value) / (eps + n)), so
// each slice's norm is at most max_value. For a [fan_in, units] kernel, axis {0} bounds each
// unit's incoming weights; for a 1-D gamma, axis {0} is the whole vector.
[[nodiscard]] Constraint max_norm(double max_value = 2.0, std::vector<int> axis = {0});
// w / (eps + sqrt(sum of w^2 over `axis`, keepdims)): unit norm per slice.
[[nodiscard]] Constraint unit_norm(std::vector<int> axis = {0});
// w * ((rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)): the norm moves a
// fraction `rate` of the way into [min_value, max_value] (rate 1: clipped at once).
[[nodiscard]] Constraint min_max_norm(double min_value = 0.0, double max_value = 1.0,
                                      double rate = 1.0, std::vector<int> axis = {0});
// Keras's RadialConstraint for a [height, width, channels, kernels] Conv2D kernel with
// height == width >= 2: every (channel, kernel) slice becomes constant on square rings around
// its centre. The ring values are the ones Keras r2.4's code picks (its docstring's example shows
// them the other way round): for odd size 2s+1 ring j takes w[s-1+j, s-1+j]; for even size 2s
// the central 2x2 block takes w[s-1, s-1] and ring j >= 1 takes w[s+j, s+j].
[[nodiscard]] Constraint radial_constraint();

}  // namespace ad::constraints
