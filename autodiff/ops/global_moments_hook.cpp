// The registry of the global-statistics hook used by synchronized batch normalization.
#include "autodiff/ops/global_moments_hook.h"

namespace ad::nn {
namespace {

GlobalMomentsHook& registered() {
  static GlobalMomentsHook hook;
  return hook;
}

}  // namespace

void set_global_moments_hook(GlobalMomentsHook hook) { registered() = std::move(hook); }

const GlobalMomentsHook& global_moments_hook() { return registered(); }

}  // namespace ad::nn
