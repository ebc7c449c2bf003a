// Saving the examples' checkpoints.
#include "examples/common/checkpoint.h"

#include <cstdio>
#include <filesystem>

namespace examples {

void save_checkpoint(const ad::Saver& saver, ad::Session& session, const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ignored;  // a missing directory shows up as the Saver's NotFoundError
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  saver.save(session, path);
  std::printf("checkpoint: %zu variables saved to %s\n", saver.var_list().size(), path.c_str());
}

}  // namespace examples
