// Random ops. Each run of a random op draws new values; the sequence is fixed by the graph seed
// (Graph::set_seed) and the op seed, so a program gives the same values every time it runs, with
// any number of threads (counter-based generator, Philox-4x32-10: each element's value depends
// only on the seeds, how many times the node ran in this session, and its index). Two sessions of
// one graph draw the same sequence.
//
// Seeds follow TF1: an unset op seed is the graph's next op seed, taken when the op is recorded;
// an unset graph seed is TF's DEFAULT_GRAPH_SEED, 87654321. Unlike TF, this also holds when neither
// is set, so unseeded programs are reproducible too.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/tensor.h"

namespace ad {

struct RandomOptions {
  DType dtype = DType::Float32;
  std::optional<std::int64_t> seed{};  // the op seed; unset: the graph assigns one
};

// Normal values (Box-Muller in float64) with the given mean and standard deviation.
[[nodiscard]] Tensor random_normal(Graph& graph, const Shape& shape, double mean = 0.0,
                                   double stddev = 1.0, const RandomOptions& options = {});
// Uniform values in [minval, maxval) (maxval > minval; bounds as rounded to the dtype).
[[nodiscard]] Tensor random_uniform(Graph& graph, const Shape& shape, double minval = 0.0,
                                    double maxval = 1.0, const RandomOptions& options = {});
// Normal values redrawn until they lie within two standard deviations of the mean (as TF).
[[nodiscard]] Tensor truncated_normal(Graph& graph, const Shape& shape, double mean = 0.0,
                                      double stddev = 1.0, const RandomOptions& options = {});
// The same three, shaped by the run-time value of a 1-D Int64 tensor (a placeholder, shape(x),
// dropout's masks): the static shape is what is known of that value when recording. With the same
// seeds they draw the same values as the static-shape forms of the same shape.
// InvalidArgumentError at run time for a negative dim.
[[nodiscard]] Tensor random_normal(const Tensor& shape, double mean = 0.0, double stddev = 1.0,
                                   const RandomOptions& options = {});
[[nodiscard]] Tensor random_uniform(const Tensor& shape, double minval = 0.0, double maxval = 1.0,
                                    const RandomOptions& options = {});
[[nodiscard]] Tensor truncated_normal(const Tensor& shape, double mean = 0.0, double stddev = 1.0,
                                      const RandomOptions& options = {});

namespace detail {
// The Philox-4x32-10 block function: four random words for a 128-bit counter and a 64-bit key.
[[nodiscard]] std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                         std::array<std::uint32_t, 2> key);
}  // namespace detail

}  // namespace ad
