// CSV output of the examples' metrics.
#include "examples/common/csv.h"

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

CsvWriter::CsvWriter(const std::string& path, std::vector<std::string> columns)
    : path_(path), columns_(columns.size()) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ignored;  // a failure shows up as the open failing below
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) {
    throw ad::NotFoundError(
        ad::str("metrics csv '", path, "': cannot open for writing: ", std::strerror(errno)));
  }
  std::vector<CsvCell> header(columns.begin(), columns.end());
  row(header);
}

void CsvWriter::row(std::initializer_list<CsvCell> cells) { row(std::vector<CsvCell>(cells)); }

void CsvWriter::row(const std::vector<CsvCell>& cells) {
  if (cells.size() != columns_) {
    throw ad::ValueError(ad::str("metrics csv '", path_, "': a row has ", cells.size(),
                                 " fields but the header has ", columns_));
  }
  for (std::size_t i = 0; i < cells.size(); ++i) out_ << (i == 0 ? "" : ",") << cells[i].text();
  out_ << "\n" << std::flush;
}

}  // namespace examples
