// The statistic of synchronized batch normalization as a replaceable hook: the layers library
// cannot link gradtape::distributed, so ad::distributed::init() registers its global_moments here
// and a `synchronized` BatchNormalization calls whatever is registered.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad::nn {

// Mean and biased variance of x over `reduction_axes` (keepdims) across the examples of every
// process of the job; differentiable at every order.
using GlobalMomentsHook = std::function<std::pair<Tensor, Tensor>(
    const Tensor& x, const std::vector<int>& reduction_axes)>;

// Registers `hook` (an empty function unregisters). Not thread-safe against concurrent graph
// building: call it once at start-up, as distributed::init() does.
void set_global_moments_hook(GlobalMomentsHook hook);
// The registered hook; an empty function when none is.
[[nodiscard]] const GlobalMomentsHook& global_moments_hook();

}  // namespace ad::nn
