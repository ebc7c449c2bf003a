// The process-wide warning handler.
#include "autodiff/warnings.h"

#include <iostream>
#include <mutex>

namespace ad {

namespace {
std::mutex g_mutex;
WarningHandler& handler() {
  static WarningHandler h = [](std::string_view message) {
    std::cerr << "gradtape warning: " << message << '\n';
  };
  return h;
}
}  // namespace

void warn(std::string_view message) {
  WarningHandler h;
  {
    const std::lock_guard lock(g_mutex);
    h = handler();
  }
  if (h) h(message);
}

WarningHandler set_warning_handler(WarningHandler new_handler) {
  const std::lock_guard lock(g_mutex);
  WarningHandler old = std::move(handler());
  handler() = std::move(new_handler);
  return old;
}

}  // namespace ad
