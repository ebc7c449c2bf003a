// Checkpoints in a data-parallel job: one rank writes, every rank can then restore.
#pragma once

#include <string>

namespace ad {
class Saver;
class Session;
}  // namespace ad

namespace ad::distributed {

// Rank `root` saves with `saver`; then every rank waits until the file is written, so a restore
// that follows on any rank (sharing the file system) reads it. An error on the root is thrown on
// every rank (on the others as InvalidArgumentError naming the root's message).
void save_on_root(const Saver& saver, Session& session, const std::string& path, int root = 0);

}  // namespace ad::distributed
