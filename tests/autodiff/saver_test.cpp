// Saver: bitwise round trips in the three archive formats, all-or-nothing restores of truncated,
// corrupted and forged files, failed and interrupted saves that keep the previous checkpoint, and
// the error messages for missing variables and dtype or shape mismatches.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "autodiff/autodiff.h"
#include "autodiff/internal/saver_format.h"
#include "autodiff/warnings.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "saver_test.XXXXXX").string();
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
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] std::size_t num_files() const {
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(path_), fs::directory_iterator()));
  }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  // A fresh file rather than a truncated one: ext4 flushes files rewritten after a truncation
  // (auto_da_alloc), which would make these thousands of small writes slow.
  std::filesystem::remove(path);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Variables of every dtype, a moving statistic, an optimizer-like slot and an empty one.
struct Model {
  ad::Graph graph;
  std::vector<ad::Variable> vars;
  explicit Model(const ad::Shape& kernel_shape = {3, 4}) {
    vars.push_back(ad::Variable::create(graph, "dense1/kernel", {.shape = kernel_shape}));
    vars.push_back(ad::Variable::create(
        graph, "bn/moving_mean", {.shape = {5}, .dtype = ad::DType::Float64, .trainable = false}));
    vars.push_back(ad::Variable::create(graph, "dense1/kernel/Adam",
                                        {.shape = kernel_shape, .trainable = false}));
    vars.push_back(ad::Variable::create(
        graph, "global_step", {.shape = {}, .dtype = ad::DType::Int64, .trainable = false}));
    vars.push_back(ad::Variable::create(graph, "mask", {.shape = {3}, .dtype = ad::DType::Bool}));
    vars.push_back(ad::Variable::create(graph, "empty", {.shape = {0, 3}}));
  }
};

// Values that a lossy encoding would change: NaN, infinities, -0, denormals, extremes.
void set_values(ad::Session& session, const Model& m, double offset) {
  const float f_specials[] = {
      std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(), -0.0f,
      std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()};
  std::vector<float> kernel(static_cast<std::size_t>(m.vars[0].shape().num_elements()));
  for (std::size_t i = 0; i < kernel.size(); ++i) {
    kernel[i] =
        i < 5 && offset == 0 ? f_specials[i] : static_cast<float>(std::sin(1.0 + i + offset) / 3.0);
  }
  session.set_value(m.vars[0], ad::Array::from(kernel, m.vars[0].shape()));
  session.set_value(
      m.vars[1], ad::Array::from<double>(
                     {1.0 / 3 + offset, -1e-310, 1e308, std::nextafter(1.0, 2.0), -offset}, {5}));
  std::vector<float> slot(kernel.size());
  for (std::size_t i = 0; i < slot.size(); ++i) slot[i] = static_cast<float>(i) * 0.1f + 7.0f;
  session.set_value(m.vars[2], ad::Array::from(slot, m.vars[2].shape()));
  session.set_value(m.vars[3], ad::Array::scalar<std::int64_t>((std::int64_t{1} << 62) +
                                                               static_cast<std::int64_t>(offset)));
  session.set_value(m.vars[4], ad::Array::from(std::vector<bool>{true, offset != 0, true}, {3}));
  session.set_value(m.vars[5], ad::Array(ad::DType::Float32, {0, 3}));
}

std::vector<ad::Array> snapshot(const ad::Session& session, const Model& m) {
  std::vector<ad::Array> out;
  for (const auto& v : m.vars) out.push_back(session.value(v).clone());
  return out;
}

bool same_values(const ad::Session& session, const Model& m, const std::vector<ad::Array>& ref) {
  for (std::size_t i = 0; i < m.vars.size(); ++i) {
    if (!session.value(m.vars[i]).bitwise_equal(ref[i])) return false;
  }
  return true;
}

// A checkpoint's header line and payload, and the same with a payload of our choosing under a
// header whose length and checksum fit it (a forged file that passes the integrity checks).
std::pair<std::string, std::string> split(const std::string& file) {
  const auto newline = file.find('\n');
  BOOST_REQUIRE(newline != std::string::npos);
  return {file.substr(0, newline), file.substr(newline + 1)};
}

std::string forge(const std::string& header, const std::string& payload) {
  std::istringstream in(header);
  std::string magic;
  std::string version;
  std::string format;
  std::string order;
  in >> magic >> version >> format >> order;
  boost::crc_32_type crc;
  crc.process_bytes(payload.data(), payload.size());
  std::ostringstream out;
  out << magic << ' ' << version << ' ' << format << ' ' << order << ' ' << payload.size() << ' '
      << std::hex << crc.checksum() << '\n'
      << payload;
  return out.str();
}

const ad::ArchiveFormat kFormats[] = {ad::ArchiveFormat::kBinary, ad::ArchiveFormat::kText,
                                      ad::ArchiveFormat::kXml};

// A Model saved in `format` to `path` (its bytes kept), whose values then changed: a refused
// restore must leave them as they are now.
struct SavedModel {
  SavedModel(ad::ArchiveFormat format, const std::string& path)
      : saver(model.graph, {}, {.format = format}) {
    set_values(session, model, 0.0);
    saver.save(session, path);
    bytes = read_file(path);
    change_values();
  }

  void change_values() {
    set_values(session, model, 2.0);
    before = snapshot(session, model);
  }

  // Writes `contents` to `path` and restores from it: true when that throws `E`, after checking
  // that nothing changed. Another exception fails the test.
  template <class E = ad::DataLossError>
  bool refuses(const std::string& path, const std::string& contents) {
    write_file(path, contents);
    try {
      saver.restore(session, path);
    } catch (const E&) {
      BOOST_REQUIRE(same_values(session, model, before));
      return true;
    }
    return false;
  }

  Model model;
  ad::Session session{model.graph};
  ad::Saver saver;
  std::string bytes;
  std::vector<ad::Array> before;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(saver_test)

BOOST_AUTO_TEST_CASE(round_trip_is_bitwise_in_every_archive_format) {
  TempDir dir;
  for (const auto format : kFormats) {
    Model m;
    ad::Session session(m.graph);
    set_values(session, m, 0.0);
    const auto saved = snapshot(session, m);
    const ad::Saver saver(m.graph, {}, {.format = format});
    const auto path = dir.file("model.ckpt");
    saver.save(session, path);
    set_values(session, m, 1.0);
    BOOST_TEST(!same_values(session, m, saved));
    saver.restore(session, path);
    BOOST_TEST(same_values(session, m, saved));

    // A fresh graph built the same way, in a fresh session, gets the same values.
    Model other;
    ad::Session fresh(other.graph);
    ad::Saver(other.graph).restore(fresh, path);
    BOOST_TEST(same_values(fresh, other, saved));
  }
}

BOOST_AUTO_TEST_CASE(the_archive_formats_are_what_they_say) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  set_values(session, m, 0.0);
  ad::Saver(m.graph, {}, {.format = ad::ArchiveFormat::kXml}).save(session, dir.file("x"));
  ad::Saver(m.graph, {}, {.format = ad::ArchiveFormat::kText}).save(session, dir.file("t"));
  ad::Saver(m.graph).save(session, dir.file("b"));
  const auto xml = read_file(dir.file("x"));
  BOOST_TEST(xml.starts_with("gradtape-checkpoint 1 xml "));
  BOOST_TEST(xml.find("<?xml") != std::string::npos);
  BOOST_TEST(xml.find("<count>6</count>") != std::string::npos);
  BOOST_TEST(read_file(dir.file("t")).starts_with("gradtape-checkpoint 1 text "));
  BOOST_TEST(read_file(dir.file("b")).starts_with("gradtape-checkpoint 1 binary "));
  // Restore reads any format, whatever the Saver would write.
  set_values(session, m, 1.0);
  ad::Saver(m.graph).restore(session, dir.file("x"));
  BOOST_TEST(session.value(m.vars[3]).item<std::int64_t>() == std::int64_t{1} << 62);
}

BOOST_AUTO_TEST_CASE(header_carries_length_and_standard_crc32_of_the_payload) {
  TempDir dir;
  Model big({300, 70});  // long enough for the eight-byte steps and an odd tail
  ad::Session session(big.graph);
  set_values(session, big, 0.0);
  for (const auto format : kFormats) {
    ad::Saver(big.graph, {}, {.format = format}).save(session, dir.file("c"));
    const auto [header, payload] = split(read_file(dir.file("c")));
    BOOST_TEST(header + "\n" + payload == forge(header, payload));  // forge uses boost::crc_32_type
  }
}

BOOST_AUTO_TEST_CASE(a_checkpoint_written_by_hand_from_the_format_restores) {
  // Version 1 of the format as saver.h describes it, in XML. The base64 strings were computed
  // apart from gradtape: "gradtape-checkpoint", "w", "step", the float32s {0.5, -3}
  // (0x3F000000, 0xC0400000) and the int64 -7, little-endian. 1145980193 is the end marker "!END".
  const std::string payload =
      "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?>\n"
      "<!DOCTYPE boost_serialization>\n<gradtape_checkpoint>\n"
      "<magic_size>19</magic_size>\n<magic>\nZ3JhZHRhcGUtY2hlY2twb2ludA==\n</magic>\n"
      "<version>1</version>\n<count>2</count>\n"
      "<name_size>1</name_size>\n<name>\ndw==\n</name>\n"
      "<dtype>1</dtype>\n<rank>1</rank>\n<dim>2</dim>\n"
      "<data_size>8</data_size>\n<data>\nAAAAPwAAQMA=\n</data>\n"
      "<name_size>4</name_size>\n<name>\nc3RlcA==\n</name>\n"
      "<dtype>3</dtype>\n<rank>0</rank>\n"
      "<data_size>8</data_size>\n<data>\n+f////////8=\n</data>\n"
      "<end>1145980193</end>\n\n</gradtape_checkpoint>\n";
  TempDir dir;
  write_file(dir.file("hand.ckpt"), forge("gradtape-checkpoint 1 xml le", payload));
  ad::Graph g;
  const auto w = ad::Variable::create(g, "w", {.shape = {2}});
  const auto step =
      ad::Variable::create(g, "step", {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ad::Session session(g);
  const ad::Saver saver(g, {}, {.format = ad::ArchiveFormat::kXml});
  saver.restore(session, dir.file("hand.ckpt"));
  const auto w_value = session.value(w).data<float>();
  BOOST_TEST(w_value[0] == 0.5f);
  BOOST_TEST(w_value[1] == -3.0f);
  BOOST_TEST(session.value(step).item<std::int64_t>() == -7);
  // And save writes the same elements (Boost's line breaks aside).
  saver.save(session, dir.file("saved.ckpt"));
  const auto without_whitespace = [](std::string text) {
    std::erase_if(text, [](char c) { return c == '\n' || c == ' '; });
    return text;
  };
  BOOST_TEST(without_whitespace(split(read_file(dir.file("saved.ckpt"))).second) ==
             without_whitespace(payload));
}

BOOST_AUTO_TEST_CASE(default_list_is_every_global_variable) {
  Model m;
  const ad::Saver saver(m.graph);
  BOOST_TEST(saver.var_list().size() == m.vars.size());
  const ad::Saver subset(m.graph, {m.vars[1]});
  BOOST_TEST(subset.var_list().size() == 1u);
}

BOOST_AUTO_TEST_CASE(leaving_out_a_moving_statistic_next_to_its_weights_warns) {
  ad::Graph g;
  (void)ad::Variable::create(g, "bn/gamma", {.shape = {2}});
  (void)ad::Variable::create(g, "bn/beta", {.shape = {2}});
  (void)ad::Variable::create(g, "bn/moving_mean", {.shape = {2}, .trainable = false});
  (void)ad::Variable::create(g, "bn/moving_variance", {.shape = {2}, .trainable = false});
  (void)ad::Variable::create(g, "dense/kernel/Adam", {.shape = {2}, .trainable = false});
  std::vector<std::string> warnings;
  const auto previous =
      ad::set_warning_handler([&](std::string_view message) { warnings.emplace_back(message); });
  const ad::Saver all(g);
  BOOST_TEST(warnings.empty());
  const ad::Saver weights_only(g, ad::trainable_variables(g));
  ad::set_warning_handler(previous);
  BOOST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(MessageHas({{"'bn/moving_mean' is not saved although 'bn/", "1 more",
                          "default var_list"}})(std::runtime_error(warnings[0])));
}

BOOST_AUTO_TEST_CASE(truncated_files_fail_cleanly_and_change_nothing) {
  TempDir dir;
  for (const auto format : kFormats) {
    SavedModel saved(format, dir.file("good"));
    for (std::size_t n = 0; n < saved.bytes.size(); ++n) {
      BOOST_TEST_REQUIRE(saved.refuses(dir.file("cut"), saved.bytes.substr(0, n)), "cut at " << n);
    }
  }
}

BOOST_AUTO_TEST_CASE(flipped_bytes_are_detected_and_change_nothing) {
  TempDir dir;
  for (const auto format : kFormats) {
    SavedModel saved(format, dir.file("good"));
    for (std::size_t i = 0; i < saved.bytes.size(); ++i) {
      std::string bad = saved.bytes;
      bad[i] = static_cast<char>(bad[i] ^ (i % 2 == 0 ? 0x01 : 0x80));
      BOOST_TEST_REQUIRE(saved.refuses(dir.file("bad"), bad), "flipped byte " << i);
    }
  }
}

BOOST_AUTO_TEST_CASE(forged_payloads_either_restore_consistently_or_fail_cleanly) {
  // The header's checksum is recomputed, so the damage reaches the archive parser.
  TempDir dir;
  for (const auto format : kFormats) {
    SavedModel saved(format, dir.file("good"));
    const auto [header, payload] = split(saved.bytes);
    // Cut short anywhere before its trailing whitespace, the archive lacks its end marker (at
    // least): always refused.
    const std::size_t content = payload.find_last_not_of(" \n") + 1;
    for (std::size_t n = 0; n < content; ++n) {
      BOOST_TEST_REQUIRE(saved.refuses(dir.file("forged"), forge(header, payload.substr(0, n))),
                         "payload cut at " << n);
    }
    // Other damage may leave a well-formed archive: damage to the raw data bytes goes unnoticed
    // by the parser (only the checksum sees it). What restores must fit the model.
    std::vector<std::string> forged;
    for (std::size_t i = 0; i < payload.size(); ++i) {
      for (const unsigned char x : {0x01, 0x10, 0xFF}) {
        std::string p = payload;
        p[i] = static_cast<char>(static_cast<unsigned char>(p[i]) ^ x);
        forged.push_back(p);
      }
      forged.push_back(payload.substr(0, i) + payload.substr(i + 1));
    }
    int restored = 0;
    for (const auto& p : forged) {
      if (saved.refuses<ad::Error>(dir.file("forged"), forge(header, p))) continue;
      ++restored;
      for (const auto& v : saved.model.vars) {
        const auto value = saved.session.value(v);
        BOOST_REQUIRE(value.dtype() == v.dtype());
        BOOST_REQUIRE(value.shape() == v.shape());
      }
      saved.change_values();
    }
    BOOST_TEST_MESSAGE(static_cast<int>(format) << ": " << restored << " of " << forged.size()
                                                << " forged payloads restored");
  }
}

BOOST_AUTO_TEST_CASE(other_files_are_refused_with_clear_errors) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  set_values(session, m, 0.0);
  const ad::Saver saver(m.graph);
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("missing.ckpt")), ad::NotFoundError,
                        (MessageHas{{"restore '", "missing.ckpt'", "No such file"}}));
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("")), ad::NotFoundError,
                        (MessageHas{{"not a regular file"}}));
  write_file(dir.file("empty"), "");
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("empty")), ad::DataLossError,
                        (MessageHas{{"empty'", "truncated"}}));
  write_file(dir.file("text"), "hello world\nthis is not a checkpoint\n");
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("text")), ad::DataLossError,
                        (MessageHas{{"text'", "not a gradtape checkpoint"}}));
  write_file(dir.file("newer"), "gradtape-checkpoint 2 binary le 0 0\n");
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("newer")), ad::DataLossError,
                        (MessageHas{{"version 2"}}));
  saver.save(session, dir.file("good"));
  write_file(dir.file("long"), read_file(dir.file("good")) + "x");
  BOOST_CHECK_EXCEPTION(saver.restore(session, dir.file("long")), ad::DataLossError,
                        (MessageHas{{"1 unexpected bytes"}}));
}

BOOST_AUTO_TEST_CASE(a_missing_variable_is_not_found_and_changes_nothing) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  set_values(session, m, 0.0);
  ad::Saver(m.graph, {m.vars[0], m.vars[1]}).save(session, dir.file("partial.ckpt"));
  set_values(session, m, 5.0);
  const auto before = snapshot(session, m);
  BOOST_CHECK_EXCEPTION(
      ad::Saver(m.graph).restore(session, dir.file("partial.ckpt")), ad::NotFoundError,
      (MessageHas{{"partial.ckpt'", "variable 'dense1/kernel/Adam' is not in the checkpoint"}}));
  BOOST_TEST(same_values(session, m, before));
}

BOOST_AUTO_TEST_CASE(shape_and_dtype_mismatches_name_the_variable_and_both_sides) {
  TempDir dir;
  const auto path = dir.file("run3.ckpt");
  {
    Model small({784, 64});
    ad::Session session(small.graph);
    set_values(session, small, 0.0);
    ad::Saver(small.graph).save(session, path);
  }
  Model big({784, 128});
  ad::Session session(big.graph);
  set_values(session, big, 0.0);
  const auto before = snapshot(session, big);
  BOOST_CHECK_EXCEPTION(ad::Saver(big.graph).restore(session, path), ad::InvalidArgumentError,
                        (MessageHas{{"restore '",
                                     "run3.ckpt': 'dense1/kernel' is [784, 64] in the "
                                     "file but [784, 128] in the model"}}));
  BOOST_TEST(same_values(session, big, before));

  ad::Graph g;
  const auto mean = ad::Variable::create(g, "bn/moving_mean", {.shape = {5}});
  ad::Session s(g);
  BOOST_CHECK_EXCEPTION(ad::Saver(g).restore(s, path), ad::InvalidArgumentError,
                        (MessageHas{{"'bn/moving_mean' is float64 in the file but float32"}}));
  BOOST_TEST(!s.is_initialized(mean));
}

BOOST_AUTO_TEST_CASE(a_failed_save_keeps_the_previous_checkpoint) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  set_values(session, m, 0.0);
  const auto saved = snapshot(session, m);
  const ad::Saver saver(m.graph);
  const auto path = dir.file("model.ckpt");
  saver.save(session, path);
  const auto good = read_file(path);
  set_values(session, m, 6.0);
  for (const char* stage : {"write", "fsync", "rename"}) {
    ad::detail::saver_fault_hook = [stage](std::string_view at) {
      if (at == stage) throw ad::ResourceExhaustedError("injected: no space left on device");
    };
    BOOST_CHECK_THROW(saver.save(session, path), ad::ResourceExhaustedError);
    ad::detail::saver_fault_hook = nullptr;
    BOOST_TEST(read_file(path) == good);
    BOOST_TEST(dir.num_files() == 1u);  // the temporary file is gone
  }
  saver.restore(session, path);
  BOOST_TEST(same_values(session, m, saved));
}

BOOST_AUTO_TEST_CASE(a_save_killed_midway_keeps_the_previous_checkpoint) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  set_values(session, m, 0.0);
  const auto saved = snapshot(session, m);
  const ad::Saver saver(m.graph);
  const auto path = dir.file("model.ckpt");
  saver.save(session, path);
  set_values(session, m, 7.0);
  for (const char* stage : {"write", "rename"}) {
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      ad::detail::saver_fault_hook = [stage](std::string_view at) {
        if (at == stage) ::raise(SIGKILL);
      };
      try {
        saver.save(session, path);
      } catch (...) {
      }
      ::_exit(0);  // not reached when the kill happens
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  }
  // The checkpoint and one abandoned temporary file: the second save removed the first one's.
  BOOST_TEST(dir.num_files() == 2u);
  saver.restore(session, path);
  BOOST_TEST(same_values(session, m, saved));
  BOOST_TEST(dir.num_files() == 1u);  // the restore removed the other
  // The next save replaces the checkpoint normally.
  set_values(session, m, 8.0);
  const auto newer = snapshot(session, m);
  saver.save(session, path);
  set_values(session, m, 0.0);
  saver.restore(session, path);
  BOOST_TEST(same_values(session, m, newer));
}

BOOST_AUTO_TEST_CASE(save_errors_name_the_problem) {
  TempDir dir;
  Model m;
  ad::Session session(m.graph);
  const ad::Saver saver(m.graph);
  BOOST_CHECK_EXCEPTION(saver.save(session, dir.file("x.ckpt")), ad::FailedPreconditionError,
                        (MessageHas{{"save '", "x.ckpt'", "uninitialized", "'dense1/kernel'"}}));
  set_values(session, m, 0.0);
  BOOST_CHECK_EXCEPTION(saver.save(session, dir.file("no/such/dir/x.ckpt")), ad::NotFoundError,
                        (MessageHas{{"save '", "cannot create a temporary file in '",
                                     "no/such/dir'", "No such file"}}));
  BOOST_TEST(dir.num_files() == 0u);
  ad::Graph other;
  ad::Session other_session(other);
  BOOST_CHECK_EXCEPTION(saver.save(other_session, dir.file("x.ckpt")), ad::ValueError,
                        (MessageHas{{"another graph"}}));
}

BOOST_AUTO_TEST_CASE(saver_construction_checks_the_list) {
  ad::Graph empty;
  BOOST_CHECK_EXCEPTION(ad::Saver{empty}, ad::ValueError, (MessageHas{{"no variables to save"}}));
  Model m;
  BOOST_CHECK_EXCEPTION((ad::Saver{m.graph, {m.vars[0], m.vars[0]}}), ad::ValueError,
                        (MessageHas{{"'dense1/kernel' is listed twice"}}));
  Model other;
  BOOST_CHECK_EXCEPTION((ad::Saver{m.graph, {other.vars[0]}}), ad::ValueError,
                        (MessageHas{{"another graph"}}));
}

BOOST_AUTO_TEST_SUITE_END()
