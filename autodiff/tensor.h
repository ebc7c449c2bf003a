// ad::Tensor: a small handle to one output of one recorded node (graph, node index, output index).
// It owns nothing and is cheap to copy. An op without outputs (a group, a train op, an initializer)
// is also a Tensor, with output index -1; fetching it runs it and yields an empty Array.
#pragma once

#include <cstdint>
#include <string>

#include "gradtape/autodiff/dtype.h"
#include "gradtape/autodiff/shape.h"

namespace ad {

class Graph;
struct Node;

class Tensor {
 public:
  Tensor() = default;  // empty: refers to nothing
  Tensor(Graph* graph, int node, int index) : graph_(graph), node_(node), index_(index) {}

  explicit operator bool() const { return graph_ != nullptr; }

  // The static shape (dims may be -1); [0] for an op without outputs.
  [[nodiscard]] const Shape& shape() const;
  [[nodiscard]] DType dtype() const;
  // "scope/op:0" for an output, "scope/op" for an op without outputs.
  [[nodiscard]] std::string name() const;
  [[nodiscard]] Graph& graph() const;
  // The recorded node this tensor comes from.
  [[nodiscard]] const Node& op() const;
  [[nodiscard]] int node_index() const { return node_; }
  [[nodiscard]] int output_index() const { return index_; }
  [[nodiscard]] bool is_op() const { return index_ < 0; }

  friend bool operator==(const Tensor& a, const Tensor& b) {
    return a.graph_ == b.graph_ && a.node_ == b.node_ && a.index_ == b.index_;
  }

 private:
  Graph* graph_ = nullptr;
  int node_ = -1;
  int index_ = -1;
};

// Arithmetic records nodes (see autodiff/ops/elementwise.h); a number operand becomes a constant of
// the tensor's dtype.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

}  // namespace ad
