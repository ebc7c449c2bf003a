// CSV output of the examples' metrics.
#include "examples/common/csv.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "autodiff/error.h"

namespace examples {

std::string CsvCell::text() const {
  if (const auto* number = std::get_if<double>(&value_)) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", *number);
    return text;
  }
  if (const auto* integer = std::get_if<std::int64_t>(&value_)) return std::to_string(*integer);
  const auto& string = std::get<std::string>(value_);
  if (string.find_first_of(",\"\n") == std::string::npos) return string;
  std::string quoted = "\"";
  for (const char c : string) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

double CsvCell::number() const {
  if (const auto* number = std::get_if<double>(&value_)) return *number;
  if (const auto* integer = std::get_if<std::int64_t>(&value_)) {
    return static_cast<double>(*integer);
  }
  return 0;
}

CsvWriter::CsvWriter(const std::string& path, std::vector<std::string> columns,
                     std::vector<std::string> run_columns)
    : path_(path), names_(columns) {
  for (const auto& c : names_) {
    is_run_column_.push_back(std::find(run_columns.begin(), run_columns.end(), c) !=
                             run_columns.end());
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ignored;  // a failure shows up as the open failing below
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) {
    throw ad::NotFoundError(
        ad::str("metrics csv '", path, "': cannot open for writing: ", std::strerror(errno)));
  }
  for (const auto& c : columns) out_ << (&c == columns.data() ? "" : ",") << CsvCell(c).text();
  out_ << "\n" << std::flush;
  std::filesystem::path logdir(path);
  logdir.replace_extension();
  summaries_ = std::make_unique<ad::summary::FileWriter>(logdir.string() + "_logs");
}

void CsvWriter::row(std::initializer_list<CsvCell> cells) { row(std::vector<CsvCell>(cells)); }

void CsvWriter::row(const std::vector<CsvCell>& cells) {
  if (cells.size() != names_.size()) {
    throw ad::ValueError(ad::str("metrics csv '", path_, "': a row has ", cells.size(),
                                 " fields but the header has ", names_.size()));
  }
  for (std::size_t i = 0; i < cells.size(); ++i) out_ << (i == 0 ? "" : ",") << cells[i].text();
  out_ << "\n" << std::flush;
  summarize(cells);
}

void CsvWriter::summarize(const std::vector<CsvCell>& cells) {
  ++rows_;
  std::int64_t step = rows_;
  std::string run;
  for (const char* step_column : {"epoch", "step"}) {  // "step" wins when both exist
    const auto it = std::find(names_.begin(), names_.end(), step_column);
    if (it != names_.end()) {
      step =
          static_cast<std::int64_t>(cells[static_cast<std::size_t>(it - names_.begin())].number());
    }
  }
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (is_run_column_[i] || cells[i].is_string()) {
      run += ad::str(run.empty() ? "" : "/", names_[i], "=", cells[i].text());
    }
  }
  std::string summary;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (is_run_column_[i] || cells[i].is_string()) continue;
    const std::string tag = run.empty() ? names_[i] : ad::str(run, "/", names_[i]);
    summary += ad::summary::scalar_summary(tag, static_cast<float>(cells[i].number()));
  }
  summaries_->add_summary(summary, step);  // Summary messages concatenate into one
}

}  // namespace examples
