// Reads plan.json, every job's state.json, result.json and metrics.jsonl (as columns) from a sweep
// output directory, and rewrites the report files from them.
#include "report/files.h"

#include <fstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/exit_codes.h"
#include "common/job_state.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json_file(const fs::path& file) {
  try {
    return read_json(file);
  } catch (const json::exception& e) {
    throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
  }
}

// metrics.jsonl as columns: {"step": [...], "loss": [...], ...}; a key missing on a line is null there.
json read_curve(const fs::path& file) {
  json curve = json::object();
  std::ifstream in(file);
  if (!in) return curve;  // a job that failed before its first logging step
  size_t rows = 0, line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.empty()) continue;
    json entry;
    try {
      entry = json::parse(line);
    } catch (const json::exception& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(line_number) + ": not valid JSON: " + e.what());
    }
    for (const auto& [key, value] : entry.items()) {
      if (!curve.contains(key)) curve[key] = json::array();
    }
    for (auto& [key, column] : curve.items()) {
      column.get_ref<json::array_t&>().resize(rows);  // nulls for lines before the key appeared
      column.push_back(entry.contains(key) ? entry[key] : json());
    }
    ++rows;
  }
  return curve;
}

}  // namespace

SweepOutput read_sweep_output(const fs::path& out) {
  const fs::path plan_file = out / "plan.json";
  if (!fs::is_directory(out)) throw std::runtime_error(out.string() + ": no such directory");
  if (!fs::exists(plan_file)) {
    throw std::runtime_error(out.string() +
                             ": not a sweep output directory (it has no plan.json); give the "
                             "directory a sweep wrote, such as runs/<name> or its --out");
  }
  const json plan = read_json_file(plan_file);
  if (!plan.contains("sweep") || !plan.contains("jobs") || !plan["jobs"].is_array()) {
    throw std::runtime_error(plan_file.string() + ": not a sweep plan (needs \"sweep\" and a \"jobs\" list)");
  }
  SweepOutput output{plan["sweep"].get<std::string>(), {}};
  for (const auto& job : plan["jobs"]) {
    const fs::path dir = out / "jobs" / job["id"].get<std::string>();
    const JobState state = read_job_state(dir);
    JobRecord record;
    if (fs::exists(dir / "result.json")) {
      record.result = read_json_file(dir / "result.json");
    } else {
      record.result = {{"id", job["id"]},
                       {"params", job["params"]},
                       {"config", job["config"]},
                       {"status", phase_name(state.phase)},
                       {"error", "no result.json: the job did not run to its end"}};
    }
    if (fs::exists(state_file(dir))) record.result["attempts"] = state.attempts;
    record.curve = read_curve(dir / "metrics.jsonl");
    output.jobs.push_back(std::move(record));
  }
  return output;
}

json rebuild_report(const fs::path& out) {
  const SweepOutput output = read_sweep_output(out);
  json report = build_report(output.name, output.jobs);
  write_report(out, report);
  return report;
}

int report_command(const fs::path& out) {
  try {
    rebuild_report(out);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  spdlog::info("report: {}", (out / "report.html").string());
  return kExitOk;
}

}  // namespace sweep::launcher
