// A sweep's output directory read back for its report (plan.json, jobs/<id>/result.json and
// metrics.jsonl) and the report rewritten from it: at the end of a sweep and by `sweep report`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/report.h"

namespace sweep::launcher {

struct SweepOutput {
  std::string name;
  std::vector<JobRecord> jobs;  // plan order; a job without result.json is "missing"
};

// Throws std::runtime_error naming the directory or file when `out` is not a readable sweep output.
SweepOutput read_sweep_output(const std::filesystem::path& out);
// Reads `out`, writes report.json, report.md and report.html into it, and returns the report.
nlohmann::json rebuild_report(const std::filesystem::path& out);
// `sweep report <out>`: the exit code (0, or 2 with the reason logged when `out` is not a sweep output).
int report_command(const std::filesystem::path& out);

}  // namespace sweep::launcher
