// A sweep's output directory read back for its report (plan.json, jobs/<id>/result.json and
// metrics.jsonl) and the report rewritten from it: at the end of a sweep and by `sweep report`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/report.h"

namespace sweep::launcher {

struct SweepOutput {
  std::string name;
  std::vector<JobRecord> jobs;  // plan order; a job whose files cannot be read is "damaged"
  std::vector<std::string> replica_keys;  // the plan's grid.replicas
  ReportSettings settings;                // the plan's report.* (defaults for a plan without them)
};

// Throws std::runtime_error naming the directory or file when `out` is not a readable sweep output.
SweepOutput read_sweep_output(const std::filesystem::path& out);
// The report of `out`, built from its files (write_report then writes it).
nlohmann::json read_and_build_report(const std::filesystem::path& out);
// Logs every job the report marks damaged, with its reason.
void log_damaged_jobs(const nlohmann::json& report);
// What is wrong with a job's files (state.json unreadable, "done" without result.json, result.json
// or metrics.jsonl not readable), naming the file; nullopt when nothing is. `planned`: its plan entry.
std::optional<std::string> damage_in_job_files(const std::filesystem::path& job_dir, const nlohmann::json& planned);
// `sweep report <out>`: 0; 2 with the reason logged when `out` is not a sweep output; 5 when the
// report cannot be written (the previous report files are then left as they were).
int report_command(const std::filesystem::path& out);

}  // namespace sweep::launcher
