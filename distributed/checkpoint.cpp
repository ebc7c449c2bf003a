// save_on_root: the root writes the checkpoint and tells every rank whether it succeeded.
#include "distributed/checkpoint.h"

#include <string_view>

#include "autodiff/error.h"
#include "autodiff/saver.h"
#include "distributed/communicator.h"

namespace ad::distributed {

void save_on_root(const Saver& saver, Session& session, const std::string& path, int root) {
  if (root < 0 || root >= size()) {
    throw ValueError(str("save_on_root: root ", root, " is not a rank of ", size()));
  }
  std::string error;  // the root's error message; empty on success
  if (rank() == root) {
    try {
      saver.save(session, path);
    } catch (const Error& e) {
      if (size() == 1) throw;
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  const auto status = detail::broadcast("save_on_root", path, error, root);
  if (!status.empty()) {
    throw InvalidArgumentError(str("save_on_root '", path, "': rank ", root, " failed to save: ",
                                   std::string_view(status.data(), status.size())));
  }
}

}  // namespace ad::distributed
