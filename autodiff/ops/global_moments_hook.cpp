// The registry of the hooks used by synchronized batch normalization.
#include "autodiff/ops/global_moments_hook.h"

#include <utility>

namespace ad::nn {
namespace {

GlobalMomentsHook& registered_moments() {
  static GlobalMomentsHook hook;
  return hook;
}

GlobalSumHook& registered_sum() {
  static GlobalSumHook hook;
  return hook;
}

}  // namespace

void set_global_moments_hook(GlobalMomentsHook hook) { registered_moments() = std::move(hook); }
void set_global_sum_hook(GlobalSumHook hook) { registered_sum() = std::move(hook); }

const GlobalMomentsHook& global_moments_hook() { return registered_moments(); }
const GlobalSumHook& global_sum_hook() { return registered_sum(); }

}  // namespace ad::nn
