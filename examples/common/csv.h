// A small CSV writer for the examples' metrics: a header, then one row per call, flushed at once
// so a run that is stopped keeps every row it reached.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

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

 private:
  std::variant<double, std::int64_t, std::string> value_;
};

class CsvWriter {
 public:
  // Creates (or truncates) `path`, creating its directory if needed, and writes the header.
  // ad::NotFoundError naming the path when it cannot be opened for writing.
  CsvWriter(const std::string& path, std::vector<std::string> columns);

  // Writes one row; ad::ValueError when the number of cells differs from the header's.
  void row(std::initializer_list<CsvCell> cells);
  void row(const std::vector<CsvCell>& cells);

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::size_t columns_;
  std::ofstream out_;
};

}  // namespace examples
