// ad::Saver: checkpoints of variables with Boost.Serialization. A checkpoint is one file: a short
// text header line (magic, format version, archive kind, payload length, CRC-32 of the payload)
// followed by the payload, a Boost archive (binary, text or XML) holding a magic string, the
// format version and, per variable, its name, dtype, shape and raw bytes.
//
// save() writes "<path>.tmp.XXXXXX" in the same directory, flushes and fsyncs it, then renames it
// over <path>: a crash or an error never leaves a half-written <path>, and the previous
// checkpoint stays readable. restore() reads and validates the whole file (header, checksum,
// archive, every requested variable present with the model's dtype and shape) before it changes
// any variable, so on any error the session is left exactly as it was.
#pragma once

#include <string>
#include <vector>

#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/variable.h"

namespace ad {

class Session;

// The Boost archive kind of the payload. Binary is compact and fast; text and XML are portable
// between compilers and Boost builds (numbers are stored bit-exactly in all three).
enum class ArchiveFormat { kBinary, kText, kXml };

struct SaverOptions {
  ArchiveFormat format = ArchiveFormat::kBinary;  // for save; restore reads any format
};

class Saver {
 public:
  // Saves and restores `var_list`, by default every variable in GLOBAL_VARIABLES when the Saver is
  // made (trainable ones, moving statistics and optimizer slots alike). ValueError when the list
  // is empty, holds a variable of another graph, or two variables with one name.
  explicit Saver(Graph& graph, std::vector<Variable> var_list = {}, SaverOptions options = {});

  // Writes the session's values of the variables to `path`, atomically (see above). Throws
  // FailedPreconditionError when a variable is uninitialized, NotFoundError when the directory
  // does not exist, and another ad::Error on any I/O failure; `path` is then untouched.
  void save(Session& session, const std::string& path) const;

  // Sets the variables from the checkpoint at `path`. All or nothing: NotFoundError when the file
  // or a variable is missing from it, InvalidArgumentError when a dtype or shape differs ("restore
  // 'run3.ckpt': 'dense1/kernel' is [784, 64] in the file but [784, 128] in the model"),
  // DataLossError when the file is truncated, corrupted or not a gradtape checkpoint. Variables
  // in the file but not in the list are ignored.
  void restore(Session& session, const std::string& path) const;

  [[nodiscard]] const std::vector<Variable>& var_list() const { return var_list_; }

 private:
  Graph* graph_;
  std::vector<Variable> var_list_;
  SaverOptions options_;
};

}  // namespace ad
