// ad::optim::Optimizer, the base of the TF1 (tf.compat.v1.train) optimizers: compute_gradients,
// apply_gradients and minimize, slot variables, and each variable's constraint applied right after
// that variable's update. Subclasses only say how one variable moves (see adam.h for an example).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/number_or_tensor.h"
#include "gradtape/autodiff/tensor.h"
#include "gradtape/autodiff/variable.h"

namespace ad {
class Graph;
}

namespace ad::optim {

// A hyper-parameter: a number, or a scalar floating Tensor computed at run time (a schedule, a
// placeholder). Optimizers convert it to each variable's dtype: a number goes straight from double
// to that dtype, a Tensor is cast.
class Hyperparameter : public NumberOrTensor {
 public:
  Hyperparameter(double value) : NumberOrTensor(value) {}  // NOLINT(google-explicit-constructor)
  // ValueError unless `value` is a floating scalar tensor.
  Hyperparameter(Tensor value);  // NOLINT(google-explicit-constructor)
};

// (gradient, variable) pairs; an empty gradient Tensor stands for TF's None.
using GradsAndVars = std::vector<std::pair<Tensor, Variable>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  Optimizer(Optimizer&&) = delete;
  Optimizer& operator=(Optimizer&&) = delete;

  // The optimizer's name ("Adam", ...): the default name scope and the suffix of slot names.
  [[nodiscard]] const std::string& name() const { return name_; }

  // d(loss)/d(var) for each variable of `var_list` (default: the graph's TRAINABLE_VARIABLES),
  // one pair per variable in order; a variable that does not reach the loss gets an empty
  // gradient, as TF's None. ValueError when there is nothing to optimize or a variable is not
  // floating.
  [[nodiscard]] GradsAndVars compute_gradients(const Tensor& loss,
                                               const std::vector<Variable>& var_list = {});

  // Records the update of every variable that has a gradient (pairs with an empty gradient are
  // skipped), each followed by `var = constraint(var)` when the variable has a constraint, then
  // the optimizer's finish step, then `global_step += 1` when given. Returns the train op (an op
  // without outputs, also added to the TRAIN_OP collection). `name` defaults to name().
  // ValueError when no pair has a gradient or a gradient does not fit its variable.
  Tensor apply_gradients(const GradsAndVars& grads_and_vars,
                         std::optional<Variable> global_step = {}, std::string_view name = {});

  // compute_gradients followed by apply_gradients. UPDATE_OPS are not run by it (as in TF1):
  // group them with the result.
  Tensor minimize(const Tensor& loss, std::optional<Variable> global_step = {},
                  const std::vector<Variable>& var_list = {}, std::string_view name = {});

  // The slot variable `name` ("m", "momentum", ...) created for `var`; ValueError naming the slots
  // that exist when there is none.
  [[nodiscard]] Variable get_slot(const Variable& var, std::string_view name) const;
  // The names of the slots this optimizer creates, sorted ("m", "v").
  [[nodiscard]] std::vector<std::string> get_slot_names() const;
  // Every variable this optimizer created (slots, then non-slot variables such as Adam's beta
  // powers), for savers and initializers.
  [[nodiscard]] std::vector<Variable> variables() const;

 protected:
  explicit Optimizer(std::string name);

  // Creates the slots of `vars` (and any non-slot variables); called by apply_gradients with the
  // variables that have gradients, outside any name scope and control dependency.
  virtual void create_slots(const std::vector<Variable>& vars);
  // Records what every update of one apply_gradients call shares (e.g. reads of Adam's beta
  // powers), in the optimizer's name scope before the first update. Default: nothing.
  virtual void prepare();
  // Records the dense update of `var` by `grad` (same dtype and shape) and returns it.
  virtual Tensor apply_dense(const Tensor& grad, const Variable& var) = 0;
  // Records what runs after every variable's update (and constraint); returns the ops to group
  // with them. Called under control dependencies on all updates. Default: nothing.
  virtual std::vector<Tensor> finish();

  // Returns var's slot `slot_name`, creating it the first time as the non-trainable variable
  // "<var>/<name()>" (uniquified: "<var>/<name()>_1", ...) filled with `initial_value`.
  Variable get_or_make_slot(const Variable& var, std::string_view slot_name, double initial_value);
  // Returns this optimizer's non-slot variable `base_name` in `graph`, creating it the first time
  // as a non-trainable scalar of `dtype` holding `initial_value` (name uniquified as TF does: a
  // second optimizer's "beta1_power" is "beta1_power_1").
  Variable get_or_make_non_slot(Graph& graph, std::string_view base_name,
                                const Hyperparameter& initial_value, DType dtype);
  // The hyper-parameter as a scalar of `dtype`, recorded once per apply_gradients call.
  Tensor hyper(std::string_view key, const Hyperparameter& value, DType dtype);

 private:
  [[nodiscard]] std::pair<std::vector<Variable>, std::vector<Tensor>> pairs_with_gradients(
      const GradsAndVars& grads_and_vars) const;
  std::vector<Tensor> record_updates(Graph& graph, const std::string& scope,
                                     const std::vector<Variable>& vars,
                                     const std::vector<Tensor>& grads);

  using VarKey = std::pair<const Graph*, int>;
  std::string name_;
  std::map<std::string, std::map<VarKey, Variable>, std::less<>> slots_;
  std::map<std::pair<const Graph*, std::string>, Variable> non_slots_;
  std::map<std::pair<std::string, DType>, Tensor> hyper_cache_;
  Graph* graph_ = nullptr;  // the graph apply_gradients is recording into
};

// The graph's global step: the Int64 scalar variable "global_step" in the GLOBAL_STEP collection
// (non-trainable, in GLOBAL_VARIABLES), created at 0 when the graph has none.
[[nodiscard]] Variable get_or_create_global_step(Graph& graph);
// The graph's global step, if it has one; ValueError when the GLOBAL_STEP collection holds several
// or its entry is not an Int64 scalar.
[[nodiscard]] std::optional<Variable> get_global_step(Graph& graph);

}  // namespace ad::optim
