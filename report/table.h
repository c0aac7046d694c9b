// The report's tables as cells. The job table: one row per job with its swept params, status,
// attempts, key metrics with the difference to the baseline, training time, failure reason. The
// grid-point table: one row per point with n and the mean, sd and paired difference (with its
// 95% interval) of each key metric. The intervention table: per grid point, the clamping
// strategies' removal and preservation. report.md and report.html render them all.
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

struct ReportTable {
  std::string name;   // "jobs" or "points": the HTML table's class
  std::string title;
  std::vector<std::string> headers;
  std::vector<std::vector<TableCell>> rows;  // in plan order, as report["jobs"] or report["points"]
  std::vector<std::string> row_classes;      // per row: "done baseline", "failed", ...
  std::string notes;                         // what the abbreviations and parentheses mean
};

ReportTable job_table(const nlohmann::json& report);
// Empty (no rows) when no grid point has two or more replicas: the job table says it all.
ReportTable point_table(const nlohmann::json& report);
// The clamping interventions per grid point: each strategy's removal and preservation (mean ± sd
// over replicas). Empty when no job has ground truth.
ReportTable intervention_table(const nlohmann::json& report);
// The probe-based absorption metric per concept: its held-out rows and probe F1, and each grid
// point's mean absorption fraction. Empty when no job has labels.
ReportTable concept_table(const nlohmann::json& report);

}  // namespace sweep::launcher
