// VariableStore: a session's variable values behind one mutex.
#include "autodiff/variable_store.h"

#include "autodiff/error.h"
#include "autodiff/internal/all_finite.h"

namespace ad {

Array VariableStore::read(const Graph& graph, int id) const {
  const std::lock_guard lock(mutex_);
  if (static_cast<std::size_t>(id) >= initialized_.size() ||
      !initialized_[static_cast<std::size_t>(id)]) {
    const auto& def = graph.variable(id);
    throw FailedPreconditionError(
        str("attempting to use uninitialized variable '", def.name, "' (", def.dtype, def.shape,
            "); run its initializer or ad::global_variables_initializer first"));
  }
  return values_[static_cast<std::size_t>(id)];
}

bool VariableStore::initialized(int id) const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(id) < initialized_.size() &&
         initialized_[static_cast<std::size_t>(id)];
}

void VariableStore::write(int id, Array value) {
  const std::lock_guard lock(mutex_);
  check_finite(id, value);
  const auto i = static_cast<std::size_t>(id);
  if (i >= values_.size()) {
    values_.resize(i + 1);
    initialized_.resize(i + 1, 0);
  }
  values_[i] = std::move(value);
  initialized_[i] = 1;
}

std::uint64_t VariableStore::next_counter(const Node* node) {
  const std::lock_guard lock(mutex_);
  return counters_[node]++;
}

void VariableStore::check_finite(int id, const Array& value) const {
  if (checked_graph_ == nullptr || !is_floating(value.dtype()) || detail::all_finite(value)) return;
  const auto& def = checked_graph_->variable(id);
  throw InvalidArgumentError(str("check_numerics: the write to variable '", def.name, "' (",
                                 def.dtype, def.shape,
                                 ") would store NaN or Inf; the variable keeps its value"));
}

Array& VariableStore::slot(const Graph& graph, int id) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= initialized_.size() || !initialized_[i]) {
    const auto& def = graph.variable(id);
    throw FailedPreconditionError(str("attempting to update uninitialized variable '", def.name,
                                      "' (", def.dtype, def.shape, ")"));
  }
  return values_[i];
}

}  // namespace ad
