// Collective ops across the ranks of the MPI job, recorded on the tape with their gradients:
// allreduce (sum, mean), allgather and broadcast, plus grouped forms that move several tensors in
// one message (the fusion buffer of DistributedOptimizer).
//
// Results are deterministic: every rank receives every contribution and adds them in rank order
// (float32 in double), so the same inputs on the same number of ranks give bitwise identical
// results on every run and on every rank. Every rank must run the same collectives in the same
// order; one that waits longer than distributed::timeout() throws DeadlineExceededError.
//
// Gradients follow the usual data-parallel convention: the objective is the sum over ranks of
// each rank's loss, so the gradient of a collective is itself a collective (allreduce of sum:
// allreduce of sum; broadcast: the sum of the gradients on the root, zero elsewhere).
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "gradtape/autodiff/tensor.h"

namespace ad::distributed {

enum class ReduceOp { kSum, kMean };

// The elementwise sum or mean (sum / size()) of x over all ranks, x's shape on every rank. Every
// rank must pass the same dtype and run-time shape (InvalidArgumentError naming the ranks
// otherwise). Mean is Horovod's default.
[[nodiscard]] Tensor allreduce(const Tensor& x, ReduceOp op = ReduceOp::kMean,
                               std::string_view name = {});
// allreduce of several floating tensors in one message; one result per input, in order.
[[nodiscard]] std::vector<Tensor> grouped_allreduce(std::span<const Tensor> xs,
                                                    ReduceOp op = ReduceOp::kMean,
                                                    std::string_view name = {});
// The ranks' x concatenated along axis 0 in rank order. The first dim may differ between ranks
// (including 0), the others must agree; x must have rank >= 1.
[[nodiscard]] Tensor allgather(const Tensor& x, std::string_view name = {});
// The root's x on every rank (same dtype and shape on every rank).
[[nodiscard]] Tensor broadcast(const Tensor& x, int root = 0, std::string_view name = {});
// broadcast of several tensors in one message.
[[nodiscard]] std::vector<Tensor> grouped_broadcast(std::span<const Tensor> xs, int root = 0,
                                                    std::string_view name = {});

// This rank's rows of `gathered` (an allgather's shape): rows [offset, offset + n) where n is
// x's first dim and offset the sum of the lower ranks' first dims. The gradient of allgather.
[[nodiscard]] Tensor rank_rows(const Tensor& gathered, const Tensor& x);
// Zeros of `gathered`'s shape with this rank's rows set to `rows` (the adjoint of rank_rows).
[[nodiscard]] Tensor pad_rank_rows(const Tensor& rows, const Tensor& gathered);

}  // namespace ad::distributed
