// The run loop: executes a plan (autodiff/plan.h) step by step, skipping the steps of cond branches
// not taken, recycling buffers after their last reader. Used by Session::run and by the While
// kernel for its condition and body. For the Session and control flow; not part of the public API.
#pragma once

#include <span>
#include <vector>

#include "autodiff/internal/plan.h"
#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/buffer_pool.h"
#include "gradtape/autodiff/variable_store.h"

namespace ad::detail {

// What every step of a run shares.
struct RunEnv {
  const Graph& graph;
  BufferPool& pool;
  VariableStore& variables;
  bool check_numerics = false;
};

// A run's values, indexed by slot; reused from run to run.
struct RunState {
  std::vector<Array> slots;
  std::vector<char> produced;
  std::vector<signed char> context_active;  // -1 unknown, 0 inactive, 1 active
};

// Runs `plan` with one value per feed of the plan (a null pointer: fed with no value, as a
// variable handle, which holds none) and returns one Array per fetch in `results` (an empty Array
// for an op without outputs). Every slot is recycled on return, also when a kernel throws.
void execute(const RunEnv& env, Plan& plan, RunState& state, std::span<const Array* const> feeds,
             std::vector<Array>& results);

}  // namespace ad::detail
