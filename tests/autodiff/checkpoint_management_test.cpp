// Checkpoint management: save(session, prefix, global_step) with max_to_keep rotation, the TF
// text-format state file, latest_checkpoint across restarts, crashes (thrown and SIGKILL) between
// a checkpoint and its state file, keep_checkpoint_every_n_hours, list_variables/load_variable,
// a Saver from a name -> variable map (EMA averages restored into the model's variables), and
// the removal of temporary files abandoned by killed saves.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/internal/saver_format.h"
#include "optim/moving_averages.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "checkpoint_test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] std::string path() const { return path_.string(); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& entry : fs::directory_iterator(path_)) {
      out.insert(entry.path().filename().string());
    }
    return out;
  }

 private:
  fs::path path_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// One float variable "w" [2] and a global step, as a training program has them; each "process"
// (a Model and its Session) starts from scratch.
struct Model {
  ad::Graph graph;
  ad::Variable w = ad::Variable::create(graph, "w", {.shape = {2}});
  ad::Variable step = ad::Variable::create(
      graph, "global_step", {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ad::Session session{graph};

  void set(int step_value) {
    session.set_value(w, ad::Array::from<float>({static_cast<float>(step_value), -1.0F}, {2}));
    session.set_value(step, ad::Array::scalar<std::int64_t>(step_value));
  }
  [[nodiscard]] float w0() const { return session.value(w).data<float>()[0]; }
};

std::string state_text(const std::vector<int>& kept) {
  std::string out = "model_checkpoint_path: \"model.ckpt-" + std::to_string(kept.back()) + "\"\n";
  for (const int k : kept)
    out += "all_model_checkpoint_paths: \"model.ckpt-" + std::to_string(k) + "\"\n";
  return out;
}

// The state file without its timestamp lines (their values are wall-clock times).
std::string without_timestamps(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start + 1);
    if (line.find("timestamp") == std::string::npos) out += line;
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::set<std::string> checkpoints(const std::vector<int>& steps) {
  std::set<std::string> out{"checkpoint"};
  for (const int s : steps) out.insert("model.ckpt-" + std::to_string(s));
  return out;
}

// Runs `body` in a child process that a SIGKILL ends at the `occurrence`-th fault stage `stage`.
template <class Body>
void run_killed_at(const char* stage, int occurrence, Body&& body) {
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    int seen = 0;
    ad::detail::saver_fault_hook = [&](std::string_view at) {
      if (at == stage && ++seen == occurrence) ::raise(SIGKILL);
    };
    try {
      body();
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_management_test)

BOOST_AUTO_TEST_CASE(global_step_saves_rotate_beyond_max_to_keep) {
  TempDir dir;
  Model m;
  ad::Saver saver(m.graph, {}, {.max_to_keep = 3});
  const std::string prefix = dir.file("model.ckpt");
  for (int step = 1; step <= 7; ++step) {
    m.set(step);
    BOOST_TEST(saver.save(m.session, prefix, m.step) == prefix + "-" + std::to_string(step));
  }
  BOOST_TEST(dir.files() == checkpoints({5, 6, 7}));
  BOOST_TEST(without_timestamps(read_text(dir.file("checkpoint"))) == state_text({5, 6, 7}));
  BOOST_TEST(saver.last_checkpoints() ==
             (std::vector<std::string>{prefix + "-5", prefix + "-6", prefix + "-7"}));
  const auto latest = ad::latest_checkpoint(dir.path());
  BOOST_REQUIRE(latest.has_value());
  BOOST_TEST(*latest == prefix + "-7");
  const auto state = ad::get_checkpoint_state(dir.path());
  BOOST_REQUIRE(state.has_value());
  BOOST_TEST(state->all_model_checkpoint_paths.size() == 3U);
  BOOST_TEST(state->all_model_checkpoint_timestamps.size() == 3U);
  Model fresh;
  ad::Saver(fresh.graph).restore(fresh.session, *latest);
  BOOST_TEST(fresh.w0() == 7.0F);
  // The step-6 checkpoint holds step 6's values.
  ad::Saver(fresh.graph).restore(fresh.session, prefix + "-6");
  BOOST_TEST(fresh.w0() == 6.0F);
}

BOOST_AUTO_TEST_CASE(rotation_continues_across_restarts) {
  TempDir dir;
  const std::string prefix = dir.file("model.ckpt");
  {
    Model first;
    ad::Saver saver(first.graph, {}, {.max_to_keep = 3});
    for (int step = 1; step <= 3; ++step) {
      first.set(step);
      (void)saver.save(first.session, prefix, step);
    }
  }
  Model second;  // a new process: restores the latest, trains on, saves
  ad::Saver saver(second.graph, {}, {.max_to_keep = 3});
  const auto latest = ad::latest_checkpoint(dir.path());
  BOOST_REQUIRE(latest.has_value());
  saver.restore(second.session, *latest);
  BOOST_TEST(second.w0() == 3.0F);
  second.set(4);
  (void)saver.save(second.session, prefix, second.step);
  BOOST_TEST(dir.files() == checkpoints({2, 3, 4}));
  BOOST_TEST(without_timestamps(read_text(dir.file("checkpoint"))) == state_text({2, 3, 4}));
}

BOOST_AUTO_TEST_CASE(a_failure_between_checkpoint_and_state_file_leaves_a_restorable_state) {
  TempDir dir;
  const std::string prefix = dir.file("model.ckpt");
  Model m;
  ad::Saver saver(m.graph, {}, {.max_to_keep = 2});
  for (int step = 1; step <= 2; ++step) {
    m.set(step);
    (void)saver.save(m.session, prefix, step);
  }
  m.set(3);
  ad::detail::saver_fault_hook = [](std::string_view at) {
    if (at == "state") throw ad::ResourceExhaustedError("injected: no space left on device");
  };
  BOOST_CHECK_THROW((void)saver.save(m.session, prefix, 3), ad::ResourceExhaustedError);
  ad::detail::saver_fault_hook = nullptr;
  // The new checkpoint is complete but not yet recorded: the state still names step 2 and
  // nothing was deleted.
  BOOST_TEST(dir.files() == checkpoints({1, 2, 3}));
  BOOST_TEST(*ad::latest_checkpoint(dir.path()) == prefix + "-2");
  Model fresh;
  ad::Saver(fresh.graph).restore(fresh.session, *ad::latest_checkpoint(dir.path()));
  BOOST_TEST(fresh.w0() == 2.0F);
}

BOOST_AUTO_TEST_CASE(a_kill_at_any_stage_of_a_managed_save_leaves_a_restorable_state) {
  // (stage, occurrence) of the kill and the latest checkpoint a restart finds: the checkpoint's
  // write, its rename, before the state file, the state file's write and rename, before the
  // deletions.
  struct Case {
    const char* stage;
    int occurrence;
    int latest;
  };
  for (const Case c : {Case{"write", 1, 2}, Case{"rename", 1, 2}, Case{"state", 1, 2},
                       Case{"write", 2, 2}, Case{"rename", 2, 2}, Case{"rotate", 1, 3}}) {
    BOOST_TEST_CONTEXT("killed at " << c.stage << " #" << c.occurrence) {
      TempDir dir;
      const std::string prefix = dir.file("model.ckpt");
      {
        Model m;
        ad::Saver saver(m.graph, {}, {.max_to_keep = 2});
        for (int step = 1; step <= 2; ++step) {
          m.set(step);
          (void)saver.save(m.session, prefix, step);
        }
        m.set(3);
        run_killed_at(c.stage, c.occurrence, [&] { (void)saver.save(m.session, prefix, 3); });
      }
      const auto latest = ad::latest_checkpoint(dir.path());
      BOOST_REQUIRE(latest.has_value());
      BOOST_TEST(*latest == prefix + "-" + std::to_string(c.latest));
      Model restarted;
      ad::Saver saver(restarted.graph, {}, {.max_to_keep = 2});
      saver.restore(restarted.session, *latest);
      BOOST_TEST(restarted.w0() == static_cast<float>(c.latest));
      // The restarted run saves on; the state file is whole again and the rotation holds.
      restarted.set(4);
      (void)saver.save(restarted.session, prefix, 4);
      BOOST_TEST(*ad::latest_checkpoint(dir.path()) == prefix + "-4");
      const auto state = ad::get_checkpoint_state(dir.path());
      BOOST_TEST(state->all_model_checkpoint_paths.size() == 2U);
      for (const auto& name : dir.files()) {
        BOOST_TEST(name.find(".tmp.") == std::string::npos, "stray " << name);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(max_to_keep_zero_keeps_every_checkpoint) {
  TempDir dir;
  Model m;
  m.set(1);
  ad::Saver saver(m.graph, {}, {.max_to_keep = 0});
  for (int step = 1; step <= 6; ++step) (void)saver.save(m.session, dir.file("model.ckpt"), step);
  BOOST_TEST(dir.files() == checkpoints({1, 2, 3, 4, 5, 6}));
  BOOST_TEST(without_timestamps(read_text(dir.file("checkpoint"))) == state_text({6}));
}

BOOST_AUTO_TEST_CASE(keep_checkpoint_every_n_hours_preserves_dropped_checkpoints) {
  TempDir dir;
  Model m;
  // A period of ~1 microsecond: every dropped checkpoint is older than the next keep time.
  m.set(1);
  ad::Saver saver(m.graph, {}, {.max_to_keep = 2, .keep_checkpoint_every_n_hours = 1e-10});
  for (int step = 1; step <= 5; ++step) {
    ::usleep(2000);
    (void)saver.save(m.session, dir.file("model.ckpt"), step);
  }
  BOOST_TEST(dir.files() == checkpoints({1, 2, 3, 4, 5}));
  BOOST_TEST(without_timestamps(read_text(dir.file("checkpoint"))) == state_text({4, 5}));
  BOOST_TEST(ad::get_checkpoint_state(dir.path())->last_preserved_timestamp > 0);
}

BOOST_AUTO_TEST_CASE(state_files_in_tf_text_format_are_read) {
  TempDir dir;
  BOOST_TEST(!ad::get_checkpoint_state(dir.path()).has_value());
  BOOST_TEST(!ad::latest_checkpoint(dir.path()).has_value());
  // As TF writes it by default: absolute paths, timestamps; plus a relative path, single quotes
  // and escapes, which the text format allows.
  const std::string absolute = dir.file("run \"a\".ckpt-10");
  write_text(dir.file("checkpoint"), "model_checkpoint_path: \"" +
                                         dir.file("run \\\"a\\\".ckpt-10") +
                                         "\"\nall_model_checkpoint_paths: 'rel\\tname-5'\n"
                                         "all_model_checkpoint_paths: \"" +
                                         dir.file("run \\\"a\\\".ckpt-10") +
                                         "\"\nall_model_checkpoint_timestamps: 1607300000.5\n"
                                         "all_model_checkpoint_timestamps: 1607300100.25\n"
                                         "last_preserved_timestamp: 1607299999\n");
  const auto state = ad::get_checkpoint_state(dir.path());
  BOOST_REQUIRE(state.has_value());
  BOOST_TEST(state->model_checkpoint_path == absolute);
  BOOST_TEST(state->all_model_checkpoint_paths[0] == dir.file("rel\tname-5"));
  BOOST_TEST(state->all_model_checkpoint_timestamps[1] == 1607300100.25);
  BOOST_TEST(state->last_preserved_timestamp == 1607299999.0);
  // The named checkpoint does not exist: no latest checkpoint, as in TF.
  BOOST_TEST(!ad::latest_checkpoint(dir.path()).has_value());
  write_text(absolute, "x");
  BOOST_TEST(*ad::latest_checkpoint(dir.path()) == absolute);
  // Written back through update_checkpoint_state, the state reads the same.
  ad::update_checkpoint_state(dir.path(), *state, "other_state");
  const auto again = ad::get_checkpoint_state(dir.path(), "other_state");
  BOOST_TEST(again->all_model_checkpoint_paths == state->all_model_checkpoint_paths);
  BOOST_TEST(again->all_model_checkpoint_timestamps == state->all_model_checkpoint_timestamps);
  write_text(dir.file("checkpoint"), "model_checkpoint_path: \"x\"\nmodel_checkpoint: 3\n");
  BOOST_CHECK_EXCEPTION((void)ad::get_checkpoint_state(dir.path()), ad::DataLossError,
                        (MessageHas{{"line 2", "unknown field 'model_checkpoint'"}}));
  write_text(dir.file("checkpoint"), "model_checkpoint_path: \"unterminated\n");
  BOOST_CHECK_THROW((void)ad::latest_checkpoint(dir.path()), ad::DataLossError);
}

BOOST_AUTO_TEST_CASE(list_variables_and_load_variable_read_a_checkpoint) {
  TempDir dir;
  Model m;
  m.set(9);
  ad::Saver saver(m.graph);
  const std::string path = saver.save(m.session, dir.file("model.ckpt"), 9);
  const auto listed = ad::list_variables(path);
  BOOST_REQUIRE(listed.size() == 2U);
  BOOST_TEST(listed[0].first == "global_step");
  BOOST_TEST(listed[0].second == ad::Shape{});
  BOOST_TEST(listed[1].first == "w");
  BOOST_TEST(listed[1].second == ad::Shape{2});
  BOOST_TEST(ad::load_variable(path, "w").bitwise_equal(m.session.value(m.w)));
  // A directory stands for its latest checkpoint.
  BOOST_TEST(ad::load_variable(dir.path(), "global_step").item<std::int64_t>() == 9);
  BOOST_CHECK_EXCEPTION((void)ad::load_variable(path, "W"), ad::NotFoundError,
                        (MessageHas{{"no variable 'W'", "closest: 'w'"}}));
  BOOST_CHECK_THROW((void)ad::list_variables(dir.file("missing")), ad::NotFoundError);
}

BOOST_AUTO_TEST_CASE(a_name_map_saver_restores_ema_averages_into_the_model_variables) {
  TempDir dir;
  const std::string path = dir.file("ema.ckpt");
  {
    ad::Graph train;
    const auto w = ad::Variable::create(train, "w", {.shape = {2}});
    ad::optim::ExponentialMovingAverage ema(0.5);
    const auto update = ema.apply({w});
    ad::Session s(train);
    s.run({ad::global_variables_initializer(train)});
    s.set_value(w, ad::Array::from<float>({4.0F, 8.0F}, {2}));
    s.run({update});  // averages: 0.5 * 0 + 0.5 * (4, 8) = (2, 4)
    ad::Saver(train).save(s, path);
  }
  ad::Graph eval;
  const auto w = ad::Variable::create(eval, "w", {.shape = {2}});
  const ad::optim::ExponentialMovingAverage ema(0.5);
  const auto names = ema.variables_to_restore(eval);
  const ad::Saver saver(eval, names);
  BOOST_TEST(saver.saved_names() == std::vector<std::string>{"w/ExponentialMovingAverage"});
  ad::Session s(eval);
  saver.restore(s, path);
  BOOST_TEST(s.value(w).data<float>()[0] == 2.0F);
  BOOST_TEST(s.value(w).data<float>()[1] == 4.0F);
  // Saved through the map, the file holds the map's names.
  saver.save(s, dir.file("renamed.ckpt"));
  BOOST_TEST(ad::list_variables(dir.file("renamed.ckpt"))[0].first == "w/ExponentialMovingAverage");
  ad::Graph other;
  const auto stranger = ad::Variable::create(other, "s", {.shape = {}});
  BOOST_CHECK_THROW(ad::Saver(eval, std::map<std::string, ad::Variable>{{"s", stranger}}),
                    ad::ValueError);
  BOOST_CHECK_THROW(ad::Saver(eval, std::map<std::string, ad::Variable>{}), ad::ValueError);
}

BOOST_AUTO_TEST_CASE(temporary_files_of_killed_saves_are_removed_by_the_next_save_or_restore) {
  TempDir dir;
  Model m;
  m.set(1);
  const ad::Saver saver(m.graph);
  const std::string path = dir.file("model.ckpt");
  saver.save(m.session, path);
  for (const char* stage : {"write", "rename"}) {
    run_killed_at(stage, 1, [&] { saver.save(m.session, path); });
  }
  // The second killed save removed the first one's file before writing its own.
  BOOST_TEST(dir.files().size() == 2U);
  // A temporary file a live save holds (locked) and look-alikes of other files stay.
  const std::string live = path + ".tmp.00ff";
  const int fd = ::open(live.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::flock(fd, LOCK_EX) == 0);
  write_text(path + ".tmp.notahex", "");
  write_text(dir.file("other.ckpt.tmp.0a"), "");
  saver.restore(m.session, path);
  BOOST_TEST(dir.files() == (std::set<std::string>{"model.ckpt", "model.ckpt.tmp.00ff",
                                                   "model.ckpt.tmp.notahex", "other.ckpt.tmp.0a"}));
  ::close(fd);  // the "save" died: the next save removes its file too
  saver.save(m.session, path);
  BOOST_TEST(dir.files() ==
             (std::set<std::string>{"model.ckpt", "model.ckpt.tmp.notahex", "other.ckpt.tmp.0a"}));
}

BOOST_AUTO_TEST_CASE(options_and_arguments_are_checked) {
  Model m;
  BOOST_CHECK_THROW(ad::Saver(m.graph, {}, {.max_to_keep = -1}), ad::ValueError);
  BOOST_CHECK_THROW(ad::Saver(m.graph, {}, {.keep_checkpoint_every_n_hours = 0}), ad::ValueError);
  BOOST_CHECK_THROW(ad::Saver(m.graph, {}, {.latest_filename = "a/b"}), ad::ValueError);
  ad::Saver saver(m.graph);
  BOOST_CHECK_EXCEPTION((void)saver.save(m.session, "/tmp/x", m.w), ad::ValueError,
                        (MessageHas{{"int64 scalar", "'w'"}}));
  BOOST_CHECK_THROW((void)saver.save(m.session, "", 1), ad::ValueError);
}

BOOST_AUTO_TEST_SUITE_END()
