// Progress of a training run on stdout. On a terminal, one status line is redrawn in place
// (epoch, step, loss, examples/s, time left); when stdout is a file or a pipe nothing is printed
// during an epoch, so logs hold exactly one plain line per epoch: the epoch summary.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace examples {

class Progress {
 public:
  // A run of `epochs` epochs of `steps_per_epoch` steps each.
  Progress(int epochs, std::int64_t steps_per_epoch);

  // Records one training step of `examples` examples and its loss; on a terminal, redraws the
  // status line (at most ten times a second).
  void step(int epoch, std::int64_t examples, double loss);

  // Prints "epoch e/E  <summary>  <examples/s>  <time>" on its own line (0-based `epoch`), over
  // the status line, and starts the next epoch's loss average.
  void end_epoch(int epoch, std::string_view summary);

  // Prints "trained <steps> steps in <time> (<rate> examples/s); metrics in <metrics_path>", the
  // closing line of a run.
  void print_summary(std::string_view metrics_path) const;

  // The mean loss of the steps of the current epoch so far.
  [[nodiscard]] double epoch_loss() const;
  // Training examples per second since the start (time spent outside step(), e.g. evaluating,
  // counts too, so this is what the whole run achieves).
  [[nodiscard]] double examples_per_second() const;
  [[nodiscard]] double elapsed_seconds() const;

 private:
  void draw_status(int epoch);
  void clear_status();

  int epochs_;
  std::int64_t steps_per_epoch_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::int64_t steps_done_ = 0;
  std::int64_t examples_done_ = 0;
  std::int64_t epoch_steps_ = 0;
  double epoch_loss_sum_ = 0.0;
  std::size_t status_width_ = 0;
};

}  // namespace examples
