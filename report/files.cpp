// Reads plan.json, every job's state.json, result.json and metrics.jsonl (as columns) from a sweep
// output directory, and rewrites the report files from them.
#include "report/files.h"

#include <fstream>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/exit_codes.h"
#include "common/export_checksums.h"
#include "common/job_state.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

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

// A finished job's result.json: missing when the state says done is damage, not "no result yet".
json read_result(const fs::path& dir, const JobState& state, const json& planned) {
  const fs::path file = dir / "result.json";
  if (fs::exists(file)) {
    json result = read_json(file);
    if (!result.is_object() || !result.contains("status")) throw std::runtime_error(file.string() + ": not a job result (it has no \"status\")");
    if (result["status"] == "done" && !result.value("metrics", json()).is_object()) {
      throw std::runtime_error(file.string() + ": a done job's result without \"metrics\"");
    }
    if (result["status"] == "done" && result.contains("export")) {  // results from before checksums have none
      if (auto damage = export_damage(dir, result["export"])) throw std::runtime_error(*damage);
    }
    return result;
  }
  if (state.phase == JobPhase::Done) throw std::runtime_error(state_file(dir).string() + " says done, but " + file.string() + " is missing");
  return {{"id", planned["id"]},
          {"params", planned["params"]},
          {"config", planned["config"]},
          {"status", phase_name(state.phase)},
          {"error", "no result.json: the job did not run to its end"}};
}

// Results written before the penalty had one name in every output (metrics absorb_*, the curve's
// "absorb" column) read as they are named now (absorption_*, "absorption").
void rename_legacy_keys(json& result, json& curve) {
  auto rename = [](json& object, const std::string& from, const std::string& to) {
    if (!object.is_object() || !object.contains(from) || object.contains(to)) return;
    object[to] = object[from];
    object.erase(from);
  };
  if (result.contains("metrics") && result["metrics"].is_object()) {
    std::vector<std::string> legacy;
    for (const auto& [key, value] : result["metrics"].items()) {
      if (key.rfind("absorb_", 0) == 0) legacy.push_back(key);
    }
    for (const auto& key : legacy) rename(result["metrics"], key, "absorption_" + key.substr(7));
  }
  rename(curve, "absorb", "absorption");
}

// One job's files; a file that cannot be read makes the job "damaged", with the file named.
JobRecord read_job(const fs::path& dir, const json& planned) {
  JobRecord record;
  try {
    const JobState state = read_job_state(dir);
    record.result = read_result(dir, state, planned);
    if (fs::exists(state_file(dir))) record.result["attempts"] = state.attempts;
    record.curve = read_curve(dir / "metrics.jsonl");
    rename_legacy_keys(record.result, record.curve);
  } catch (const std::exception& e) {
    record.result = {{"id", planned["id"]},
                     {"params", planned["params"]},
                     {"config", planned["config"]},
                     {"status", "damaged"},
                     {"error", e.what()}};
    record.curve = json::object();
  }
  // An explicit grid point's label names the job in the report, and whether it is a baseline and
  // the params it is paired with its baseline by come from the plan too (plans written before
  // these were recorded: the report derives them from the absorption penalty's settings).
  for (const char* key : {"label", "label_keys", "baseline", "baseline_params"}) {
    if (planned.contains(key)) record.result[key] = planned[key];
  }
  return record;
}

}  // namespace

std::optional<std::string> damage_in_job_files(const fs::path& job_dir, const json& planned) {
  auto record = read_job(job_dir, planned);
  if (record.result["status"] != "damaged") return std::nullopt;
  return record.result["error"].get<std::string>();
}

SweepOutput read_sweep_output(const fs::path& out) {
  const fs::path plan_file = out / "plan.json";
  if (!fs::is_directory(out)) throw std::runtime_error(out.string() + ": no such directory");
  if (!fs::exists(plan_file)) {
    throw std::runtime_error(out.string() +
                             ": not a sweep output directory (it has no plan.json); give the "
                             "directory a sweep wrote, such as runs/<name> or its --out");
  }
  const json plan = read_json(plan_file);
  if (!plan.contains("sweep") || !plan.contains("jobs") || !plan["jobs"].is_array()) {
    throw std::runtime_error(plan_file.string() + ": not a sweep plan (needs \"sweep\" and a \"jobs\" list)");
  }
  SweepOutput output{plan["sweep"].get<std::string>(), {}, {}, {}};
  const json report_settings = plan.value("report", json::object());
  if (report_settings.contains("report.ev_tolerance")) {
    const json& tolerance = report_settings["report.ev_tolerance"];
    if (!tolerance.is_number() || tolerance.get<double>() < 0)
      throw std::runtime_error(plan_file.string() + ": report.ev_tolerance must be a number >= 0, got " + tolerance.dump());
    output.settings.ev_tolerance = tolerance.get<double>();
  }
  const json replicas = plan.value("grid", json::object()).value("replicas", json::array());
  for (const auto& key : replicas) {
    if (!key.is_string()) throw std::runtime_error(plan_file.string() + ": grid.replicas holds a non-string " + key.dump());
    output.replica_keys.push_back(key.get<std::string>());
  }
  for (const auto& job : plan["jobs"]) {
    if (!job.is_object() || !job.value("id", json()).is_string()) {
      throw std::runtime_error(plan_file.string() + ": a job without an \"id\": " + job.dump());
    }
    output.jobs.push_back(read_job(out / "jobs" / job["id"].get<std::string>(), job));
  }
  return output;
}

json read_and_build_report(const fs::path& out) {
  const SweepOutput output = read_sweep_output(out);
  return build_report(output.name, output.jobs, output.replica_keys, output.settings);
}

void log_damaged_jobs(const json& report) {
  for (const auto& job : report["jobs"]) {
    if (job["status"] == "damaged") spdlog::error("job {} is damaged: {}", job["id"].get<std::string>(), job["error"].get<std::string>());
  }
}

int report_command(const fs::path& out) {
  json report;
  try {
    report = read_and_build_report(out);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  log_damaged_jobs(report);
  try {
    write_report(out, report);
  } catch (const std::exception& e) {
    spdlog::error("{}; the previous report files are unchanged", e.what());
    return kExitOutputFailed;
  }
  spdlog::info("report: {}", (out / "report.html").string());
  return kExitOk;
}

}  // namespace sweep::launcher
