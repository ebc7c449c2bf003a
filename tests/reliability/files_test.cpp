// Hostile files for every reader (load_csv, load_digits_csv, load_mnist_idx, Saver::restore) and
// hostile paths for Saver::save: a FIFO with no writer, a directory and /dev/zero are refused
// before open() can block or a read can run forever; a gzip file whose CRC or length footer is
// wrong, or whose body was damaged, is a DataLossError before any of it is interpreted; a path
// with an embedded NUL byte is rejected instead of being cut. After each failure the process, the
// session and the loaders keep working.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filtering_stream.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "autodiff/autodiff.h"
#include "data/loaders.h"
#include "tests/support/gradient_check.h"

using ad::testing::MessageHas;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir {
  fs::path dir;
  TempDir()
      : dir(fs::temp_directory_path() /
            ("gradtape_files_" + std::to_string(::getpid()) + "_" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))) {
    fs::create_directories(dir);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path(name), std::ios::binary);
    out << bytes;
    return path(name);
  }
};

std::string gzip(const std::string& bytes,
                 int level = boost::iostreams::zlib::default_compression) {
  std::string packed;
  {
    boost::iostreams::filtering_ostream out;
    out.push(boost::iostreams::gzip_compressor(boost::iostreams::gzip_params(level)));
    out.push(boost::iostreams::back_inserter(packed));
    out << bytes;
  }
  return packed;
}

std::string idx_images(int n, int rows, int cols) {
  std::string s{0, 0, 8, 3};
  for (const int d : {n, rows, cols}) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xff);
  }
  for (int i = 0; i < n * rows * cols; ++i) s += static_cast<char>(i % 251);
  return s;
}

std::string idx_labels(const std::vector<unsigned char>& labels) {
  std::string s{0, 0, 8, 1};
  const auto n = static_cast<int>(labels.size());
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((n >> shift) & 0xff);
  for (const unsigned char l : labels) s += static_cast<char>(l);
  return s;
}

// Ten rows "i,i+1,label" with labels 0..4.
std::string small_csv() {
  std::string text;
  for (int i = 0; i < 10; ++i) text += std::to_string(i) + "," + std::to_string(i + 1) + ",4\n";
  return text;
}

// Runs `call`, which must throw E with `fragments` within 20 s. When it blocks (the bug: open() of
// a FIFO waits for a writer), a writer opens the FIFO to release it, and the case fails.
template <class E>
void expect_prompt_error(const std::function<void()>& call, const std::string& fifo,
                         const std::vector<std::string>& fragments) {
  auto result = std::async(std::launch::async, [&] {
    try {
      call();
    } catch (const E& e) {
      return MessageHas{fragments}(e) ? std::string() : std::string("message: ") + e.what();
    } catch (const std::exception& e) {
      return std::string("wrong error type: ") + e.what();
    }
    return std::string("returned normally");
  });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
    BOOST_ERROR("the call blocked on the FIFO for 20 s");
  }
  const std::string problem = result.get();
  BOOST_TEST(problem.empty(), problem);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(files_test)

BOOST_AUTO_TEST_CASE(a_fifo_without_writer_is_refused_without_blocking) {
  TempDir t;
  const std::string fifo = t.path("pipe");
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string labels = t.write("lab.idx", idx_labels({1, 2}));
  const std::vector<std::string> says{"'" + fifo + "'", "FIFO", "not a regular file"};
  expect_prompt_error<ad::NotFoundError>([&] { (void)ad::data::load_csv(fifo); }, fifo, says);
  expect_prompt_error<ad::NotFoundError>([&] { (void)ad::data::load_digits_csv(fifo); }, fifo,
                                         says);
  expect_prompt_error<ad::NotFoundError>([&] { (void)ad::data::load_mnist_idx(fifo, labels); },
                                         fifo, says);
  ad::Graph g;
  auto w = ad::get_variable(g, "w", {.shape = {2}, .initializer = ad::initializers::ones()});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  ad::Saver saver(g);
  expect_prompt_error<ad::NotFoundError>([&] { saver.restore(s, fifo); }, fifo,
                                         {"restore '" + fifo + "'", "FIFO"});
  // Everything still works: a save and restore round trip, and a load.
  saver.save(s, t.path("ok.ckpt"));
  saver.restore(s, t.path("ok.ckpt"));
  BOOST_TEST(s.value(w).data<float>()[1] == 1.0f);
  BOOST_TEST(ad::data::load_csv(t.write("ok.csv", small_csv())).size() == 10);
}

BOOST_AUTO_TEST_CASE(a_directory_and_dev_zero_are_refused) {
  TempDir t;
  const std::string labels = t.write("lab.idx", idx_labels({1, 2}));
  ad::Graph g;
  (void)ad::get_variable(g, "w", {.shape = {2}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  ad::Saver saver(g);
  const std::vector<std::pair<std::string, std::string>> not_files{
      {t.dir.string(), "a directory"}, {"/dev/zero", "a character device"}};
  for (const auto& [path, kind] : not_files) {
    BOOST_TEST_CONTEXT(path) {
      const std::vector<std::string> says{"'" + path + "'", kind, "not a regular file"};
      BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(path), ad::NotFoundError, MessageHas{says});
      BOOST_CHECK_EXCEPTION((void)ad::data::load_digits_csv(path), ad::NotFoundError,
                            MessageHas{says});
      BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(path, labels), ad::NotFoundError,
                            MessageHas{says});
      BOOST_CHECK_EXCEPTION(saver.restore(s, path), ad::NotFoundError, MessageHas{says});
    }
  }
  saver.save(s, t.path("ok.ckpt"));
  BOOST_CHECK_NO_THROW(saver.restore(s, t.path("ok.ckpt")));
}

BOOST_AUTO_TEST_CASE(a_path_with_a_nul_byte_is_rejected_not_cut) {
  TempDir t;
  ad::Graph g;
  (void)ad::get_variable(g, "w", {.shape = {2}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  ad::Saver saver(g);
  const std::string cut = t.path("model");
  const std::string with_nul = cut + std::string(1, '\0') + ".ckpt";
  BOOST_CHECK_EXCEPTION(saver.save(s, with_nul), ad::ValueError,
                        (MessageHas{{"save '", "model\\0.ckpt'", "NUL byte at offset"}}));
  BOOST_TEST(!fs::exists(cut));  // nothing written under the cut name
  BOOST_TEST(fs::is_empty(t.dir));
  // The cut name exists now; the NUL path must still not reach it.
  saver.save(s, cut);
  BOOST_CHECK_EXCEPTION(saver.restore(s, with_nul), ad::ValueError,
                        (MessageHas{{"restore '", "NUL byte"}}));
  const std::string csv = t.write("d.csv", small_csv());
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(csv + std::string(1, '\0') + "x"), ad::ValueError,
                        (MessageHas{{"load_csv '", "NUL byte"}}));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(csv + std::string(1, '\0'), csv),
                        ad::ValueError, (MessageHas{{"load_mnist_idx '", "NUL byte"}}));
  BOOST_CHECK_NO_THROW(saver.restore(s, cut));
}

BOOST_AUTO_TEST_CASE(a_gzip_with_a_wrong_length_or_crc_footer_is_data_loss) {
  TempDir t;
  const std::string csv = gzip(small_csv());
  const std::string images = gzip(idx_images(2, 2, 2));
  const std::string labels = t.write("lab.idx", idx_labels({1, 2}));
  // The footer is CRC-32 (4 bytes, little-endian) then ISIZE, the length mod 2^32 (4 bytes).
  for (const std::size_t from_end : {4U, 8U}) {
    const char* field = from_end == 4 ? "length" : "crc";
    BOOST_TEST_CONTEXT(field) {
      std::string bad_csv = csv;
      bad_csv[bad_csv.size() - from_end] ^= 0x01;
      BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(t.write("d.csv.gz", bad_csv)),
                            ad::DataLossError,
                            (MessageHas{{"load_csv '", "d.csv.gz'", "checksum or length"}}));
      std::string bad_images = images;
      bad_images[bad_images.size() - from_end] ^= 0x01;
      BOOST_CHECK_EXCEPTION((void)ad::data::load_mnist_idx(t.write("img.gz", bad_images), labels),
                            ad::DataLossError,
                            (MessageHas{{"load_mnist_idx '", "img.gz'", "checksum or length"}}));
    }
  }
  // The intact files load.
  BOOST_TEST(ad::data::load_csv(t.write("ok.csv.gz", csv)).size() == 10);
  BOOST_TEST(ad::data::load_mnist_idx(t.write("ok.gz", images), labels).size() == 2);
}

BOOST_AUTO_TEST_CASE(a_damaged_gzip_body_is_data_loss_before_it_is_parsed) {
  TempDir t;
  // Stored (level 0) blocks hold the text verbatim, so changing a label digit in the compressed
  // file still decompresses, to a label outside [0, 5): only the CRC tells. Before, the parser
  // met that label first and called it an InvalidArgumentError.
  std::string text = small_csv();
  std::string packed = gzip(text, boost::iostreams::zlib::no_compression);
  const std::size_t at = packed.find("3,4,4\n");
  BOOST_REQUIRE(at != std::string::npos);
  packed[at + 4] = '7';
  BOOST_CHECK_EXCEPTION(
      (void)ad::data::load_csv(t.write("flip.csv.gz", packed), {.num_classes = 5}),
      ad::DataLossError, (MessageHas{{"flip.csv.gz'", "checksum or length does not match"}}));
  // The same flip in a plain file is a well-formed file with a bad label.
  text[text.find("3,4,4\n") + 4] = '7';
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(t.write("flip.csv", text), {.num_classes = 5}),
                        ad::InvalidArgumentError, (MessageHas{{"label 7 is outside [0, 5)"}}));
  // A deflate stream cut short, and one with garbage after the last member.
  const std::string csv = gzip(small_csv());
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(t.write("cut.gz", csv.substr(0, csv.size() - 9))),
                        ad::DataLossError, (MessageHas{{"cut.gz'", "ends early"}}));
  BOOST_CHECK_EXCEPTION((void)ad::data::load_csv(t.write("tail.gz", csv + "garbage")),
                        ad::DataLossError, (MessageHas{{"tail.gz'", "damaged"}}));
}

BOOST_AUTO_TEST_CASE(concatenated_gzip_members_still_load) {
  // gzip -d reads a file of several members as their concatenation; so do the loaders.
  TempDir t;
  const std::string text = small_csv();
  const auto half = text.size() / 2 + 3;  // inside a line: members need not end at a newline
  const auto one = ad::data::load_csv(t.write("one.csv.gz", gzip(text)));
  const auto two = ad::data::load_csv(
      t.write("two.csv.gz", gzip(text.substr(0, half)) + gzip(text.substr(half))));
  BOOST_TEST(two.features.bitwise_equal(one.features));
  BOOST_TEST(two.labels.bitwise_equal(one.labels));
}

// The writers that take a path or a directory (event files, graphviz, managed saves, checkpoint
// state files) reject an embedded NUL too, before anything is created or removed under the cut
// name.
BOOST_AUTO_TEST_CASE(every_writer_rejects_a_path_with_a_nul_byte) {
  TempDir t;
  const std::string nul(1, '\0');
  BOOST_CHECK_EXCEPTION(ad::summary::FileWriter(t.path("logs") + nul + "x"), ad::ValueError,
                        (MessageHas{{"FileWriter '", "NUL byte"}}));
  BOOST_CHECK_EXCEPTION(ad::summary::FileWriter(t.path("logs"), {.filename_suffix = nul + "s"}),
                        ad::ValueError, (MessageHas{{"FileWriter '", "NUL byte"}}));
  BOOST_TEST(fs::is_empty(t.dir));
  ad::Graph g;
  auto step = ad::Variable::create(g, "global_step",
                                   {.shape = {}, .dtype = ad::DType::Int64, .trainable = false});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  BOOST_CHECK_EXCEPTION(ad::write_graphviz(g, t.path("g.dot") + nul + "x"), ad::ValueError,
                        (MessageHas{{"write_graphviz '", "NUL byte"}}));
  // A stray temporary of the cut prefix must survive: the NUL prefix may not act on it.
  const std::string stray = t.write("model.tmp.0a1b", "left by a killed save");
  ad::Saver saver(g);
  BOOST_CHECK_EXCEPTION((void)saver.save(s, t.path("model") + nul + "x", step), ad::ValueError,
                        (MessageHas{{"save '", "NUL byte"}}));
  ad::CheckpointState state;
  state.model_checkpoint_path = "model-0";
  BOOST_CHECK_EXCEPTION(ad::update_checkpoint_state(t.path("d") + nul, state), ad::ValueError,
                        (MessageHas{{"update_checkpoint_state '", "NUL byte"}}));
  BOOST_CHECK_EXCEPTION((void)ad::latest_checkpoint(t.path("d") + nul), ad::ValueError,
                        (MessageHas{{"NUL byte"}}));
  BOOST_TEST(fs::exists(stray));
  // Everything still works with clean names.
  BOOST_TEST(saver.save(s, t.path("model"), step) == t.path("model") + "-0");
  BOOST_TEST(ad::latest_checkpoint(t.dir.string()).value() == t.path("model-0"));
  ad::summary::FileWriter writer(t.path("logs"));
  writer.add_summary(ad::summary::scalar_summary("loss", 1.5f), 1);
  writer.close();
  BOOST_TEST(fs::file_size(writer.path()) > 0U);
}

// A checkpoint state file that is a FIFO (no writer) or a directory: no checkpoint, promptly.
BOOST_AUTO_TEST_CASE(a_checkpoint_state_fifo_or_directory_is_no_checkpoint) {
  TempDir t;
  BOOST_REQUIRE(::mkfifo(t.path("checkpoint").c_str(), 0600) == 0);
  auto result =
      std::async(std::launch::async, [&] { return ad::latest_checkpoint(t.dir.string()); });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    const int writer = ::open(t.path("checkpoint").c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
    BOOST_ERROR("latest_checkpoint blocked on the FIFO for 20 s");
  }
  BOOST_TEST(!result.get().has_value());
  fs::remove(t.path("checkpoint"));
  fs::create_directory(t.path("checkpoint"));
  BOOST_TEST(!ad::get_checkpoint_state(t.dir.string()).has_value());
}

// A save killed between writing its temporary file and renaming it leaves "<path>.tmp.<hex>";
// the next restore of that path, and the next save, remove it (no live save holds its lock).
BOOST_AUTO_TEST_CASE(a_killed_saves_temporary_is_removed_by_the_next_restore) {
  TempDir t;
  ad::Graph g;
  auto w = ad::get_variable(g, "w", {.shape = {2}});
  ad::Session s(g);
  s.run({ad::global_variables_initializer(g)});
  ad::Saver saver(g);
  const std::string path = t.path("model.ckpt");
  saver.save(s, path);
  const std::string stray = t.write("model.ckpt.tmp.7f3a", "half a checkpoint");
  saver.restore(s, path);
  BOOST_TEST(!fs::exists(stray));
  (void)t.write("model.ckpt.tmp.7f3b", "");
  saver.save(s, path);
  BOOST_TEST(fs::is_regular_file(path));
  BOOST_TEST(std::distance(fs::directory_iterator(t.dir), fs::directory_iterator{}) == 1);
  BOOST_TEST(s.value(w).size() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
