// The threads gradtape's kernels use: a process-wide count, as TF's intra-op thread pool.
//
// Large kernels (elementwise loops, reductions, batch norm, matrix products, convolutions) split
// their work into pieces fixed by the sizes alone and run them on a library-owned pool: the
// calling thread plus up to num_threads() - 1 workers. Results are bitwise identical for every
// thread count. Idle workers spin for a few microseconds, then sleep, so a program sharing the
// machine with other jobs does not burn CPU waiting for them (no OMP_WAIT_POLICY needed).
// A Session can use another count for its own runs: SessionOptions::intra_op_parallelism_threads.
#pragma once

namespace ad {

// Sets the number of threads (the calling thread included) that kernels use from now on, in every
// thread of the process; 1 runs every kernel on the calling thread. 0 restores the default:
// OMP_NUM_THREADS when it is set to a positive number, else the CPUs this process may run on
// (sched_getaffinity). Throws InvalidArgumentError for a negative count. Workers are started
// when a kernel first needs them.
void set_num_threads(int threads);

// The process-wide number of threads kernels use (set_num_threads, or the default above).
[[nodiscard]] int num_threads();

}  // namespace ad
