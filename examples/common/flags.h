// Command-line flags shared by the example programs (Boost.Program_options): every example takes
// --epochs, --batch-size, --learning-rate, --seed, --data, --checkpoint, --threads and
// --metrics-csv, and adds its own flags through ExampleFlags::add.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace examples {

struct CommonFlags {
  int epochs = 10;
  std::int64_t batch_size = 64;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  std::string data{};         // default: default_data_path()
  std::string checkpoint{};   // default: examples/out/<program>.ckpt
  int threads = 0;            // 0: OMP_NUM_THREADS if set, else every core
  std::string metrics_csv{};  // default: examples/out/<program>.csv
};

// The bundled digits file: examples/data/digits.csv.gz in the source tree (known at compile time),
// else data/digits.csv.gz next to the binary (the build copies it there).
[[nodiscard]] std::string default_data_path();

// Where outputs go by default: examples/out/<file> in the source tree (ignored by git).
[[nodiscard]] std::string default_output_path(std::string_view file);

// The flags of one program: the common ones (with the program's own defaults), plus its own.
class ExampleFlags {
 public:
  // `program` names the defaults of --checkpoint and --metrics-csv; `summary` heads --help.
  ExampleFlags(std::string program, const std::string& summary, CommonFlags defaults);

  // Adds a program-specific flag bound to `value`, whose current value is the default.
  template <class T>
  ExampleFlags& add(const char* name, T& value, const char* help) {
    options_.add_options()(name, boost::program_options::value(&value)->default_value(value), help);
    return *this;
  }
  // The same for a double, whose default --help shows with %g (Boost prints 0.93 as
  // 0.93000000000000005 otherwise).
  ExampleFlags& add(const char* name, double& value, const char* help);
  // A switch: present on the command line sets `value` to true (`--batch-norm`).
  ExampleFlags& add(const char* name, bool& value, const char* help);

  // Parses the command line into the bound values. Returns false when --help was printed (the
  // program should exit 0). Throws boost::program_options::error on a bad flag. A positive
  // --threads sets the kernels' threads (ad::set_num_threads).
  bool parse(int argc, char** argv);

  [[nodiscard]] const CommonFlags& common() const { return common_; }
  [[nodiscard]] const std::string& program() const { return program_; }

 private:
  std::string program_;
  CommonFlags common_;
  boost::program_options::options_description options_;
};

// The threads gradtape's kernels use in this process (ad::num_threads).
[[nodiscard]] int kernel_threads();

// Prints "<program>: <what>" to stderr (with a pointer to --help for a bad flag).
void report_error(const char* program, const char* what, bool bad_flag);

// Runs `body` and turns exceptions into a message on stderr and exit status 2 (a bad flag adds a
// pointer to --help); returns body's status otherwise.
template <class Body>
int run_main(const char* program, Body&& body) {
  try {
    return body();
  } catch (const boost::program_options::error& e) {
    report_error(program, e.what(), true);
  } catch (const std::exception& e) {
    report_error(program, e.what(), false);
  }
  return 2;
}

}  // namespace examples
