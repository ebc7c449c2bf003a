// A small CSV writer for the examples' metrics: a header, then one row per call, flushed at once
// so a run that is stopped keeps every row it reached. Every row also goes to TensorBoard: an
// event file in "<csv path without .csv>_logs/" beside the CSV, one scalar summary per number.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "autodiff/summary.h"

namespace examples {

// One field: a number or a string (strings with commas or quotes are quoted).
class CsvCell {
 public:
  CsvCell(double value) : value_(value) {}                    // NOLINT(google-explicit-constructor)
  CsvCell(std::int64_t value) : value_(value) {}              // NOLINT(google-explicit-constructor)
  CsvCell(int value) : value_(std::int64_t{value}) {}         // NOLINT(google-explicit-constructor)
  CsvCell(std::string value) : value_(std::move(value)) {}    // NOLINT(google-explicit-constructor)
  CsvCell(const char* value) : value_(std::string(value)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] std::string text() const;
  [[nodiscard]] bool is_string() const { return std::holds_alternative<std::string>(value_); }
  // The number (0 for a string).
  [[nodiscard]] double number() const;

 private:
  std::variant<double, std::int64_t, std::string> value_;
};

class CsvWriter {
 public:
  // Creates (or truncates) `path`, creating its directory if needed, and writes the header.
  // ad::NotFoundError naming the path when it cannot be opened for writing. In the summaries, the
  // global step is the "step" column (else "epoch", else the row number); the values of
  // `run_columns` and of string cells name the run: the tag of column c is "<run>/<c>"
  // ("model=bn/seed=1/test_accuracy"), or just "c".
  CsvWriter(const std::string& path, std::vector<std::string> columns,
            std::vector<std::string> run_columns = {});

  // Writes one row; ad::ValueError when the number of cells differs from the header's.
  void row(std::initializer_list<CsvCell> cells);
  void row(const std::vector<CsvCell>& cells);

  [[nodiscard]] const std::string& path() const { return path_; }
  // The TensorBoard event file the rows go to.
  [[nodiscard]] const std::string& summary_path() const { return summaries_->path(); }

 private:
  void summarize(const std::vector<CsvCell>& cells);

  std::string path_;
  std::vector<std::string> names_;
  std::vector<bool> is_run_column_;
  std::ofstream out_;
  std::unique_ptr<ad::summary::FileWriter> summaries_;
  std::int64_t rows_ = 0;
};

}  // namespace examples
