// ad::Saver: checkpoints of variables with Boost.Serialization. A checkpoint is one file: a short
// text header line (magic, format version, archive kind, payload length, CRC-32 of the payload)
// followed by the payload, a Boost archive (binary, text or XML) holding a magic string, the
// format version and, per variable, its name, dtype, shape and raw bytes.
//
// save() writes "<path>.tmp.XXXXXX" in the same directory, flushes and fsyncs it, then renames it
// over <path>: a crash or an error never leaves a half-written <path>, and the previous
// checkpoint stays readable. restore() reads and validates the whole file (header, checksum,
// archive, every requested variable present with the model's dtype and shape) before it changes
// any variable, so on any error the session is left exactly as it was. A save or restore of a path
// first removes the temporary files that saves of that path killed midway left behind (a save in
// progress holds a lock on its temporary file, so only abandoned ones are removed).
//
// Checkpoint management (TF1's tf.train.Saver): save(session, prefix, global_step) writes
// "<prefix>-<step>", then the directory's state file "checkpoint" (TF's text format, written
// atomically too), then deletes the checkpoints beyond max_to_keep. A crash at any point leaves
// the state file naming complete checkpoints only. latest_checkpoint(dir) reads it back.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/variable.h"

namespace ad {

class Session;

// The Boost archive kind of the payload. Binary is compact and fast; text and XML are portable
// between compilers and Boost builds (numbers are stored bit-exactly in all three).
enum class ArchiveFormat { kBinary, kText, kXml };

struct SaverOptions {
  ArchiveFormat format = ArchiveFormat::kBinary;  // for save; restore reads any format
  // save(session, prefix, global_step) keeps the newest max_to_keep checkpoints and deletes older
  // ones once the new one and the state file are complete; 0 keeps every checkpoint.
  int max_to_keep = 5;
  // Of the checkpoints dropped by max_to_keep, keep one every this many hours for good (TF's
  // default, 10000, keeps none in practice).
  double keep_checkpoint_every_n_hours = 10000.0;
  // The state file's name in the checkpoint directory.
  std::string latest_filename = "checkpoint";
};

// The state file of a checkpoint directory (TF's CheckpointState). Paths are as read, joined with
// the directory when relative (gradtape writes them relative to the directory).
struct CheckpointState {
  std::string model_checkpoint_path;                    // the newest checkpoint
  std::vector<std::string> all_model_checkpoint_paths;  // the kept ones, oldest first
  std::vector<double> all_model_checkpoint_timestamps;  // seconds since the epoch, one per path
  double last_preserved_timestamp = 0;
};

class Saver {
 public:
  // Saves and restores `var_list`, by default every variable in GLOBAL_VARIABLES when the Saver is
  // made (trainable ones, moving statistics and optimizer slots alike). ValueError when the list
  // is empty, holds a variable of another graph, or two variables with one name.
  explicit Saver(Graph& graph, std::vector<Variable> var_list = {}, SaverOptions options = {});

  // Saves and restores each variable under the name it has in the map (TF's Saver(dict)), e.g.
  // Saver(graph, ema.variables_to_restore()) loads the moving averages into the model's variables.
  // ValueError when the map is empty or holds a variable of another graph. (A template only so that
  // Saver(graph, {}, options) keeps meaning the default list.)
  template <class NameMap>
  requires std::same_as<NameMap, std::map<std::string, Variable>> Saver(Graph& graph,
                                                                        const NameMap& names,
                                                                        SaverOptions options = {})
      : Saver(Named{}, graph,
              std::vector<std::pair<std::string, Variable>>(names.begin(), names.end()),
              std::move(options)) {}

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

  // Writes "<prefix>-<global_step>" as save(session, path) does, records it in the state file of
  // its directory and returns its path; then deletes the checkpoints beyond max_to_keep (see
  // SaverOptions). The first such save adopts the list of the directory's existing state file, so
  // rotation continues across restarts. The Variable form reads the step from the session.
  std::string save(Session& session, const std::string& prefix, std::int64_t global_step);
  std::string save(Session& session, const std::string& prefix, const Variable& global_step);

  // The checkpoints this Saver keeps (oldest first), as TF's last_checkpoints.
  [[nodiscard]] std::vector<std::string> last_checkpoints() const;
  // Adopts `paths` (oldest first) as the kept checkpoints, as TF's recover_last_checkpoints.
  void recover_last_checkpoints(const std::vector<std::string>& paths);

  [[nodiscard]] const std::vector<Variable>& var_list() const { return var_list_; }
  // The name each variable of var_list() has in the checkpoint.
  [[nodiscard]] const std::vector<std::string>& saved_names() const { return names_; }

 private:
  struct Named {};  // keeps this constructor out of the overload set of Saver(graph, {}, ...)
  Saver(Named, Graph& graph, std::vector<std::pair<std::string, Variable>> names,
        SaverOptions options);
  void check_list();  // also starts the keep_checkpoint_every_n_hours clock
  void adopt_state_of(const std::string& directory);
  void record_and_rotate(const std::string& path);

  Graph* graph_;
  std::vector<Variable> var_list_;
  std::vector<std::string> names_;
  SaverOptions options_;
  std::vector<std::pair<std::string, double>> last_checkpoints_;  // (path, seconds since epoch)
  double next_checkpoint_time_ = 0;
  double last_preserved_timestamp_ = 0;
  bool adopted_state_ = false;
};

// The state file of `checkpoint_dir` ("<dir>/checkpoint" by default), or nullopt when there is
// none. DataLossError when it cannot be parsed.
[[nodiscard]] std::optional<CheckpointState> get_checkpoint_state(
    const std::string& checkpoint_dir, const std::string& latest_filename = "checkpoint");
// The newest checkpoint of `checkpoint_dir` per its state file; nullopt when there is no state
// file or the checkpoint it names does not exist (as TF's latest_checkpoint returns None).
[[nodiscard]] std::optional<std::string> latest_checkpoint(
    const std::string& checkpoint_dir, const std::string& latest_filename = "checkpoint");
// Writes the state file of `checkpoint_dir` atomically (what Saver::save(session, prefix, step)
// does; exposed as TF's update_checkpoint_state). Paths inside the directory are written relative.
void update_checkpoint_state(const std::string& checkpoint_dir, const CheckpointState& state,
                             const std::string& latest_filename = "checkpoint");

// The (name, shape) of every variable in the checkpoint `path`, sorted by name; a directory means
// its latest checkpoint. Errors as Saver::restore.
[[nodiscard]] std::vector<std::pair<std::string, Shape>> list_variables(const std::string& path);
// The value of variable `name` in the checkpoint `path` (or a directory's latest); NotFoundError
// naming the closest names when it is not there.
[[nodiscard]] Array load_variable(const std::string& path, const std::string& name);

}  // namespace ad
