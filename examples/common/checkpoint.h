// Saving the examples' checkpoints.
#pragma once

#include <string>

#include "autodiff/saver.h"
#include "autodiff/session.h"

namespace examples {

// Saves `saver`'s variables from `session` to `path` (creating its directory) and prints where.
void save_checkpoint(const ad::Saver& saver, ad::Session& session, const std::string& path);

}  // namespace examples
