// A user's training program, as bench/threads_bench runs it: it trains the Fashion batch-norm
// convnet of bench/cnn_model.h (NHWC, batch 64) and sets nothing about threads, neither through
// the API nor the environment, so it sees the library's defaults. Prints the wall time of the
// timed steps and the final loss (which must not depend on the thread settings).
//   threads_user [steps (default 30)] [small]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cnn_model.h"

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  const bool small = argc > 2 && std::string_view(argv[2]) == "small";
  bench::cnn::GradtapeNet model(small ? bench::cnn::Net::kSmall : bench::cnn::Net::kFashion,
                                /*nchw=*/false);
  for (int i = 0; i < 2; ++i) model.step(i, false);  // plans, primitives, buffers
  const auto start = std::chrono::steady_clock::now();
  for (int i = 2; i < steps + 1; ++i) model.step(i, false);
  const double loss = model.step(steps + 1, true);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  std::printf("seconds %.3f loss %.9g\n", seconds.count(), loss);
  return 0;
}
