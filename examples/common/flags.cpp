// The shared flags of the examples, the default data and output paths, and --threads.
#include "examples/common/flags.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>

#include "autodiff/threading.h"

namespace examples {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

// A double as --help shows it: 0.001 rather than 0.0010000000000000000208.
std::string shown(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace

std::string default_data_path() {
  const fs::path in_source = fs::path(GRADTAPE_EXAMPLES_DATA_DIR) / "digits.csv.gz";
  if (fs::exists(in_source)) return in_source.string();
  std::error_code error;
  const fs::path binary = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    const fs::path beside = binary.parent_path() / "data" / "digits.csv.gz";
    if (fs::exists(beside)) return beside.string();
  }
  return in_source.string();  // missing: the loader's error names this path
}

std::string default_output_path(std::string_view file) {
  return (fs::path(GRADTAPE_EXAMPLES_OUT_DIR) / file).string();
}

ExampleFlags::ExampleFlags(std::string program, const std::string& summary, CommonFlags defaults)
    : program_(std::move(program)),
      common_(std::move(defaults)),
      options_(program_ + ": " + summary + "\n\nOptions") {
  if (common_.data.empty()) common_.data = default_data_path();
  if (common_.checkpoint.empty()) common_.checkpoint = default_output_path(program_ + ".ckpt");
  if (common_.metrics_csv.empty()) common_.metrics_csv = default_output_path(program_ + ".csv");
  CommonFlags& c = common_;
  options_.add_options()("help,h", "show this help")(
      "epochs", po::value(&c.epochs)->default_value(c.epochs), "passes over the training data")(
      "batch-size", po::value(&c.batch_size)->default_value(c.batch_size), "examples per step")(
      "learning-rate",
      po::value(&c.learning_rate)->default_value(c.learning_rate, shown(c.learning_rate)),
      "optimizer step size")("seed", po::value(&c.seed)->default_value(c.seed),
                             "seed of the split, the batch order and the initial weights")(
      "data", po::value(&c.data)->default_value(c.data),
      "digits CSV (gzipped or not), or a directory with MNIST's train-images-idx3-ubyte[.gz] "
      "and train-labels-idx1-ubyte[.gz]")("checkpoint",
                                          po::value(&c.checkpoint)->default_value(c.checkpoint),
                                          "where to save the trained variables (ad::Saver)")(
      "threads", po::value(&c.threads)->default_value(c.threads),
      "threads for the kernels (ad::set_num_threads); 0: OMP_NUM_THREADS, or every core")(
      "metrics-csv", po::value(&c.metrics_csv)->default_value(c.metrics_csv),
      "per-epoch (or per-evaluation) metrics, one CSV row each");
}

ExampleFlags& ExampleFlags::add(const char* name, double& value, const char* help) {
  options_.add_options()(name, po::value(&value)->default_value(value, shown(value)), help);
  return *this;
}

ExampleFlags& ExampleFlags::add(const char* name, bool& value, const char* help) {
  options_.add_options()(name, po::bool_switch(&value)->default_value(value), help);
  return *this;
}

bool ExampleFlags::parse(int argc, char** argv) {
  po::variables_map values;
  po::store(po::parse_command_line(argc, argv, options_), values);
  if (values.count("help") != 0) {
    std::cout << options_ << "\n";
    return false;
  }
  po::notify(values);
  if (common_.epochs < 1) throw po::error("--epochs must be at least 1");
  if (common_.batch_size < 1) throw po::error("--batch-size must be at least 1");
  if (common_.threads < 0) throw po::error("--threads must be 0 (automatic) or positive");
  if (common_.threads > 0) ad::set_num_threads(common_.threads);
  return true;
}

int kernel_threads() { return ad::num_threads(); }

void report_error(const char* program, const char* what, bool bad_flag) {
  std::cout.flush();
  std::cerr << program << ": " << what << (bad_flag ? " (see --help)" : "") << "\n";
}

}  // namespace examples
