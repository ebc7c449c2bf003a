// Checkpoint management: the directory's "checkpoint" state file in TF's text format
// (model_checkpoint_path: "...", all_model_checkpoint_paths: "...", ...), latest_checkpoint, and
// the Saver's global-step saves with max_to_keep rotation (TF r2.4's saver.py:
// _RecordLastCheckpoint and _MaybeDeleteOldCheckpoints). Order of a managed save: the checkpoint,
// then the state file, then the deletions, so a crash between any two leaves a state file that
// names complete checkpoints only.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "autodiff/error.h"
#include "autodiff/file_util.h"
#include "autodiff/internal/saver_io.h"
#include "autodiff/saver.h"
#include "autodiff/session.h"
#include "autodiff/warnings.h"

namespace ad {

namespace {

double seconds_since_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string join(const std::string& directory, const std::string& path) {
  if (path.starts_with('/') || directory == ".") return path;
  return directory.ends_with('/') ? directory + path : directory + "/" + path;
}

// `path` relative to `directory` when it lies directly in it, else as given.
std::string relative_to(const std::string& directory, const std::string& path) {
  if (detail::directory_of(path) != directory) return path;
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A protobuf text-format string literal (C escapes, octal for other bytes, as Python's
// text_format writes them).
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\'':
        out += "\\'";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20 || byte >= 0x7f) {
          char octal[5];
          std::snprintf(octal, sizeof octal, "\\%03o", byte);
          out += octal;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return {buffer, result.ptr};
}

struct ParseError {
  std::string what;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One escape after the backslash at text[i]; advances i past it.
char unescape(std::string_view text, std::size_t& i) {
  if (++i >= text.size()) throw ParseError{"a string ends with a backslash"};
  const char c = text[i++];
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'x': {
      int value = 0;
      int digits = 0;
      for (; digits < 2 && i < text.size() && hex_value(text[i]) >= 0; ++digits, ++i) {
        value = value * 16 + hex_value(text[i]);
      }
      if (digits == 0) throw ParseError{"\\x without hex digits"};
      return static_cast<char>(value);
    }
    default:
      if (c >= '0' && c <= '7') {
        int value = c - '0';
        for (int digits = 1; digits < 3 && i < text.size() && text[i] >= '0' && text[i] <= '7';
             ++digits, ++i) {
          value = value * 8 + (text[i] - '0');
        }
        return static_cast<char>(value);
      }
      if (c == '"' || c == '\'' || c == '\\' || c == '?') return c;
      throw ParseError{str("unknown escape \\", c)};
  }
}

std::string parse_string(std::string_view value) {
  if (value.size() < 2 || (value.front() != '"' && value.front() != '\'') ||
      value.back() != value.front()) {
    throw ParseError{str("expected a quoted string, got ", value)};
  }
  const std::string_view body = value.substr(1, value.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < body.size();) {
    if (body[i] == '\\') {
      out += unescape(body, i);
    } else if (body[i] == value.front()) {
      throw ParseError{"an unescaped quote inside a string"};
    } else {
      out += body[i++];
    }
  }
  return out;
}

double parse_number(std::string_view value) {
  double out = 0;
  const auto result = std::from_chars(value.data(), value.data() + value.size(), out);
  if (result.ec != std::errc() || result.ptr != value.data() + value.size()) {
    throw ParseError{str("expected a number, got ", value)};
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

void parse_line(std::string_view line, CheckpointState& state) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) throw ParseError{"expected 'field: value'"};
  const std::string_view key = trim(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  if (key == "model_checkpoint_path") {
    state.model_checkpoint_path = parse_string(value);
  } else if (key == "all_model_checkpoint_paths") {
    state.all_model_checkpoint_paths.push_back(parse_string(value));
  } else if (key == "all_model_checkpoint_timestamps") {
    state.all_model_checkpoint_timestamps.push_back(parse_number(value));
  } else if (key == "last_preserved_timestamp") {
    state.last_preserved_timestamp = parse_number(value);
  } else {
    throw ParseError{str("unknown field '", key, "'")};
  }
}

CheckpointState parse_state(const std::string& text, const std::string& file) {
  CheckpointState state;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const std::string_view content = trim(line);
    if (content.empty() || content.starts_with('#')) continue;
    try {
      parse_line(content, state);
    } catch (const ParseError& e) {
      throw DataLossError(str("get_checkpoint_state '", file, "': line ", number, ": ", e.what));
    }
  }
  if (state.model_checkpoint_path.empty()) {
    throw DataLossError(str("get_checkpoint_state '", file, "': no model_checkpoint_path"));
  }
  return state;
}

std::string format_state(const std::string& directory, const CheckpointState& state) {
  std::string out = str(
      "model_checkpoint_path: ", quote(relative_to(directory, state.model_checkpoint_path)), "\n");
  for (const auto& path : state.all_model_checkpoint_paths) {
    out += str("all_model_checkpoint_paths: ", quote(relative_to(directory, path)), "\n");
  }
  for (const double t : state.all_model_checkpoint_timestamps) {
    out += str("all_model_checkpoint_timestamps: ", number(t), "\n");
  }
  if (state.last_preserved_timestamp != 0) {
    out += str("last_preserved_timestamp: ", number(state.last_preserved_timestamp), "\n");
  }
  return out;
}

}  // namespace

std::optional<CheckpointState> get_checkpoint_state(const std::string& checkpoint_dir,
                                                    const std::string& latest_filename) {
  const std::string file = join(checkpoint_dir, latest_filename);
  detail::check_path("get_checkpoint_state", file);
  if (!file_exists(file)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CheckpointState state = parse_state(text, file);
  state.model_checkpoint_path = join(checkpoint_dir, state.model_checkpoint_path);
  for (auto& path : state.all_model_checkpoint_paths) path = join(checkpoint_dir, path);
  return state;
}

std::optional<std::string> latest_checkpoint(const std::string& checkpoint_dir,
                                             const std::string& latest_filename) {
  const auto state = get_checkpoint_state(checkpoint_dir, latest_filename);
  if (!state || !file_exists(state->model_checkpoint_path)) return std::nullopt;
  return state->model_checkpoint_path;
}

void update_checkpoint_state(const std::string& checkpoint_dir, const CheckpointState& state,
                             const std::string& latest_filename) {
  if (state.model_checkpoint_path.empty()) {
    throw ValueError("update_checkpoint_state: model_checkpoint_path is empty");
  }
  CheckpointState written = state;
  auto& all = written.all_model_checkpoint_paths;
  if (all.empty() || all.back() != written.model_checkpoint_path) {
    all.push_back(written.model_checkpoint_path);  // as TF: the newest is always listed last
    if (!written.all_model_checkpoint_timestamps.empty()) {
      written.all_model_checkpoint_timestamps.push_back(seconds_since_epoch());
    }
  }
  if (!written.all_model_checkpoint_timestamps.empty() &&
      written.all_model_checkpoint_timestamps.size() != all.size()) {
    throw ValueError(str("update_checkpoint_state: ", all.size(), " paths but ",
                         written.all_model_checkpoint_timestamps.size(), " timestamps"));
  }
  const std::string file = join(checkpoint_dir, latest_filename);
  detail::check_path("update_checkpoint_state", file);
  detail::remove_stray_temporaries(file);
  detail::write_file_atomically(file, "", format_state(checkpoint_dir, written),
                                str("update_checkpoint_state '", file, "'"));
}

std::string Saver::save(Session& session, const std::string& prefix, std::int64_t global_step) {
  if (prefix.empty()) throw ValueError("save: the prefix is empty");
  const std::string path = str(prefix, "-", global_step);
  detail::check_path("save", path);  // before anything acts on a path a NUL byte would cut
  detail::remove_stray_temporaries(prefix, /*any_step=*/true);  // those of killed earlier saves
  save(session, path);
  if (!adopted_state_) adopt_state_of(detail::directory_of(path));
  detail::saver_fault("state");
  record_and_rotate(path);
  return path;
}

std::string Saver::save(Session& session, const std::string& prefix, const Variable& global_step) {
  if (!global_step || global_step.dtype() != DType::Int64 || global_step.shape().rank() != 0) {
    throw ValueError(str("save '", prefix, "': the global step must be an int64 scalar variable",
                         global_step ? str(", not '", global_step.name(), "' ", global_step.dtype(),
                                           global_step.shape())
                                     : std::string()));
  }
  return save(session, prefix, session.value(global_step).item<std::int64_t>());
}

std::vector<std::string> Saver::last_checkpoints() const {
  std::vector<std::string> out;
  for (const auto& entry : last_checkpoints_) out.push_back(entry.first);
  return out;
}

void Saver::recover_last_checkpoints(const std::vector<std::string>& paths) {
  last_checkpoints_.clear();
  for (const auto& path : paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) continue;  // as TF: only those that still exist
    last_checkpoints_.emplace_back(path, static_cast<double>(info.st_mtime));
  }
  adopted_state_ = true;
}

void Saver::adopt_state_of(const std::string& directory) {
  adopted_state_ = true;
  std::optional<CheckpointState> state;
  try {
    state = get_checkpoint_state(directory, options_.latest_filename);
  } catch (const DataLossError& e) {
    warn(str("Saver: ignoring an unreadable checkpoint state file (", e.what(), ")"));
  }
  if (!state) return;
  const auto& paths = state->all_model_checkpoint_paths;
  const auto& times = state->all_model_checkpoint_timestamps;
  last_checkpoints_.clear();
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (!file_exists(paths[i])) continue;
    last_checkpoints_.emplace_back(paths[i], i < times.size() ? times[i] : seconds_since_epoch());
  }
  last_preserved_timestamp_ = state->last_preserved_timestamp;
}

void Saver::record_and_rotate(const std::string& path) {
  const double now = seconds_since_epoch();
  auto kept = last_checkpoints_;
  std::vector<std::pair<std::string, double>> dropped;
  if (options_.max_to_keep > 0) {
    std::erase_if(kept, [&](const auto& entry) { return entry.first == path; });
    kept.emplace_back(path, now);
    while (kept.size() > static_cast<std::size_t>(options_.max_to_keep)) {
      dropped.push_back(kept.front());
      kept.erase(kept.begin());
    }
  }
  CheckpointState state;
  state.model_checkpoint_path = path;
  for (const auto& [p, t] : options_.max_to_keep > 0 ? kept : decltype(kept){{path, now}}) {
    state.all_model_checkpoint_paths.push_back(p);
    state.all_model_checkpoint_timestamps.push_back(t);
  }
  state.last_preserved_timestamp = last_preserved_timestamp_;
  update_checkpoint_state(detail::directory_of(path), state, options_.latest_filename);
  last_checkpoints_ = std::move(kept);
  detail::saver_fault("rotate");
  for (const auto& [old_path, time] : dropped) {
    if (time > next_checkpoint_time_) {  // one kept for good every n hours
      next_checkpoint_time_ += options_.keep_checkpoint_every_n_hours * 3600;
      last_preserved_timestamp_ = time;
      continue;
    }
    if (::unlink(old_path.c_str()) != 0 && errno != ENOENT) {
      warn(str("Saver: cannot delete the old checkpoint '", old_path, "'"));
    }
  }
}

}  // namespace ad
