// The job table of the report as cells, one row per job: swept params, status, attempts, key
// metrics with the difference to the baseline, training time, failure reason. report.md and
// report.html both render it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

struct TableCell {
  enum class Kind { Text, Number, Prose };  // prose: free text (failure reasons), wrapped
  Kind kind;
  std::string text;
  std::string delta;           // the difference to the baseline, "(+0.012)"; empty if none
  std::optional<double> sort;  // a Number cell's value; none when it has none ("n/a", "-")
};

struct JobTable {
  std::vector<std::string> headers;
  std::vector<std::vector<TableCell>> rows;  // in plan order, as report["jobs"]
};

JobTable job_table(const nlohmann::json& report);
// What the table's abbreviations and parentheses mean, in one paragraph.
const char* job_table_notes();

}  // namespace sweep::launcher
