// The status line and epoch summaries of the example programs.
#include "examples/common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace examples {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// "850 ms", "4.2 s", "3 min 05 s".
std::string format_duration(double seconds) {
  char text[48];
  if (seconds < 1.0) {
    std::snprintf(text, sizeof text, "%.0f ms", 1e3 * seconds);
  } else if (seconds < 60.0) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else {
    const long whole = std::lround(seconds);
    std::snprintf(text, sizeof text, "%ld min %02ld s", whole / 60, whole % 60);
  }
  return text;
}

}  // namespace

Progress::Progress(int epochs, std::int64_t steps_per_epoch)
    : epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      terminal_(isatty(STDOUT_FILENO) != 0),
      start_(Clock::now()) {}

void Progress::step(int epoch, std::int64_t examples, double loss) {
  ++steps_done_;
  ++epoch_steps_;
  examples_done_ += examples;
  epoch_loss_sum_ += loss;
  if (!terminal_) return;
  const auto now = Clock::now();
  if (seconds_between(last_draw_, now) < 0.1 && epoch_steps_ != steps_per_epoch_) return;
  last_draw_ = now;
  draw_status(epoch);
}

void Progress::draw_status(int epoch) {
  const double elapsed = elapsed_seconds();
  const std::int64_t total = steps_per_epoch_ * epochs_;
  const double left =
      elapsed / static_cast<double>(steps_done_) * static_cast<double>(total - steps_done_);
  char line[160];
  const int width = std::snprintf(
      line, sizeof line, "epoch %d/%d  step %lld/%lld  loss %.4f  %.0f examples/s  %s left",
      epoch + 1, epochs_, static_cast<long long>(epoch_steps_),
      static_cast<long long>(steps_per_epoch_), epoch_loss(), examples_per_second(),
      format_duration(left).c_str());
  const auto printed = static_cast<std::size_t>(width);
  // Pad with spaces so a shorter line fully covers the previous one.
  std::printf("\r%s%*s", line,
              static_cast<int>(status_width_ > printed ? status_width_ - printed : 0), "");
  status_width_ = printed;
  std::fflush(stdout);
}

void Progress::clear_status() {
  if (!terminal_ || status_width_ == 0) return;
  std::printf("\r%*s\r", static_cast<int>(status_width_), "");
  status_width_ = 0;
}

void Progress::end_epoch(int epoch, std::string_view summary) {
  clear_status();
  const int digits = static_cast<int>(std::to_string(epochs_).size());
  std::printf("epoch %*d/%d  %.*s  %.0f examples/s  %s\n", digits, epoch + 1, epochs_,
              static_cast<int>(summary.size()), summary.data(), examples_per_second(),
              format_duration(elapsed_seconds()).c_str());
  std::fflush(stdout);
  epoch_steps_ = 0;
  epoch_loss_sum_ = 0.0;
}

void Progress::print_summary(std::string_view metrics_path) const {
  std::printf("trained %lld steps in %s (%.0f examples/s); metrics in %.*s\n",
              static_cast<long long>(steps_done_), format_duration(elapsed_seconds()).c_str(),
              examples_per_second(), static_cast<int>(metrics_path.size()), metrics_path.data());
}

double Progress::epoch_loss() const {
  return epoch_steps_ == 0 ? 0.0 : epoch_loss_sum_ / static_cast<double>(epoch_steps_);
}

double Progress::examples_per_second() const {
  const double elapsed = elapsed_seconds();
  return elapsed > 0.0 ? static_cast<double>(examples_done_) / elapsed : 0.0;
}

double Progress::elapsed_seconds() const { return seconds_between(start_, Clock::now()); }

}  // namespace examples
