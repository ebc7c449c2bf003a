// ad::optim::ExponentialMovingAverage: TF1's tf.train.ExponentialMovingAverage (r2.4). apply()
// creates a shadow variable per variable (or tensor) and returns the op that moves every shadow
// towards its source: shadow -= (1 - decay) * (shadow - value), i.e.
// shadow = decay * shadow + (1 - decay) * value. With num_updates the decay used is
// min(decay, (1 + num_updates) / (10 + num_updates)), so early averages follow the values faster.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"
#include "gradtape/optim/optimizer.h"

namespace ad {
class Graph;
}

namespace ad::optim {

struct ExponentialMovingAverageOptions {
  // A numeric scalar (typically the global step's value()), cast to float32; empty: not used.
  Tensor num_updates{};
  // Only for tensors given to apply() (as in TF, whose variables' shadows start at the variable's
  // value): the shadow starts at 0 and is divided by 1 - decay^t after t updates, so it is an
  // unbiased average from the first update on.
  bool zero_debias = false;
  // The name scope of the update ops and the suffix of the shadow variables' names.
  std::string name = "ExponentialMovingAverage";
};

class ExponentialMovingAverage {
 public:
  // `decay` is a number or a float scalar Tensor (converted to float32, as TF does).
  explicit ExponentialMovingAverage(Hyperparameter decay,
                                    ExponentialMovingAverageOptions options = {});

  // Creates the shadow "<var>/<name>" of each variable (non-trainable, initialized to the
  // variable's value when its initializer runs after the variable's), adds the variables (not the
  // shadows, as TF) to MOVING_AVERAGE_VARIABLES, and returns the op updating every shadow, named
  // after the options' name scope. Recorded under the current control dependencies, so
  // `ControlDependencies deps{train_op}; auto op = ema.apply(vars);` averages the updated values.
  // ValueError when the list is empty, a variable is not floating, or has a shadow already.
  Tensor apply(const std::vector<Variable>& vars);
  // The same for every trainable variable of `graph` (TF's apply() without a list).
  Tensor apply(Graph& graph);
  // Averages of tensors (e.g. a loss): each shadow "<op name>/<name>" starts at 0 (the tensors
  // need fully defined static shapes); with zero_debias it is debiased as described above.
  Tensor apply(const std::vector<Tensor>& tensors);

  // The shadow of `var` (or of a tensor given to apply); an empty Variable when it has none.
  [[nodiscard]] Variable average(const Variable& var) const;
  [[nodiscard]] Variable average(const Tensor& tensor) const;
  // The name the shadow of `var` has (or would have): "<var>/<name>".
  [[nodiscard]] std::string average_name(const Variable& var) const;

  // The name -> variable map a Saver needs to load the averages into the model's own variables:
  // average_name(v) -> v for every variable of `moving_avg_variables` (default: the graph's
  // trainable and MOVING_AVERAGE_VARIABLES variables), and name -> variable for every other global
  // variable (so the batch-norm moving statistics, the global step, ... are restored as saved).
  [[nodiscard]] std::map<std::string, Variable> variables_to_restore(
      Graph& graph, const std::vector<Variable>& moving_avg_variables = {}) const;
  // The same for the graph apply() recorded into; ValueError when apply() has not run.
  [[nodiscard]] std::map<std::string, Variable> variables_to_restore() const;

  [[nodiscard]] const std::string& name() const { return options_.name; }

 private:
  struct Shadow {
    Variable average;
    Variable biased;      // zero_debias only
    Variable local_step;  // zero_debias only
  };
  using Key = std::pair<const Graph*, int>;  // (graph, node index of the variable or tensor)

  Variable make_shadow(Graph& graph, const std::string& base, const Shape& shape, DType dtype,
                       Initializer initializer);
  Tensor one_minus_decay(Graph& graph) const;
  Tensor update(const Shadow& shadow, const Tensor& value, const Tensor& one_minus_decay_f32);

  Hyperparameter decay_;
  ExponentialMovingAverageOptions options_;
  std::map<Key, Shadow> averages_;
  Graph* graph_ = nullptr;
};

}  // namespace ad::optim
