// Warnings gradtape emits where TF1 silently does something users trip over (update ops never
// run, trainable=false dropping updates). By default they go to stderr; a program or a test can
// route them elsewhere.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ad {

using WarningHandler = std::function<void(std::string_view message)>;

// Emits a warning through the current handler.
void warn(std::string_view message);
// Installs `handler` (an empty handler silences warnings) and returns the previous one.
WarningHandler set_warning_handler(WarningHandler handler);

}  // namespace ad
