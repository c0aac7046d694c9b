// The single-process sweep: checks the sweep file, the grid and the data before any training,
// writes the plan, runs each job through the worker and aggregates the report.
#include "launcher/run_sweep.h"

#include <set>

#include <spdlog/spdlog.h>

#include "launcher/config_error.h"
#include "launcher/grid.h"
#include "launcher/job_settings.h"
#include "launcher/report.h"
#include "sharding/data_error.h"
#include "worker/communicator.h"
#include "worker/job_files.h"
#include "worker/run_job.h"

namespace sweep::launcher {
namespace {

// Opens every distinct data source once, so a bad shard stops the sweep before any training.
void check_data(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  std::set<std::string> checked;
  for (const auto& job : jobs) {
    const auto& c = job.resolved;
    if (c["data.source"] != "files") continue;
    auto key = c["data.paths"].dump() + c["data.tensor"].dump() + c["data.eval_tokens"].dump();
    if (!checked.insert(key).second) continue;
    try {
      sharding::open_dataset(to_data_config(c));
    } catch (const sharding::DataError& e) {
      auto where = spec.where.count("data.paths") ? spec.where.at("data.paths") : spec.file.filename().string();
      throw ConfigError(where + ": data.paths = " + c["data.paths"].dump() + ": " + e.what());
    }
  }
}

nlohmann::json plan_json(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  nlohmann::json plan = {{"sweep", spec.name}, {"jobs", nlohmann::json::array()}};
  for (size_t i = 0; i < jobs.size(); ++i) {
    plan["jobs"].push_back({{"index", i}, {"id", jobs[i].id}, {"params", jobs[i].params},
                            {"baseline", jobs[i].baseline}, {"config", jobs[i].resolved}});
  }
  return plan;
}

}  // namespace

int run_sweep(const SweepOptions& options) {
  SweepSpec spec;
  std::vector<PlannedJob> jobs;
  try {
    spec = load_sweep(options.file, options.overrides);
    jobs = expand_grid(spec);
    check_data(spec, jobs);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  auto out = options.out.value_or(std::filesystem::path("runs") / spec.name);
  std::filesystem::create_directories(out / "jobs");
  worker::write_file_atomic(out / "sweep.toml", spec.text);
  worker::write_json_atomic(out / "plan.json", plan_json(spec, jobs));
  spdlog::info("sweep {}: {} jobs, output in {}", spec.name, jobs.size(), out.string());

  worker::LocalCommunicator comm;
  std::vector<nlohmann::json> results;
  bool any_failed = false;
  for (size_t i = 0; i < jobs.size(); ++i) {
    spdlog::info("job {}/{} {} {}", i + 1, jobs.size(), jobs[i].id, jobs[i].params.dump());
    auto outcome = worker::run_job(to_job_config(jobs[i]), comm, out / "jobs" / jobs[i].id);
    any_failed |= !outcome.ok;
    results.push_back(outcome.result);
  }
  auto report = build_report(spec.name, results);
  write_report(out, report);
  spdlog::info("report: {}", (out / "report.md").string());
  for (const auto& id : report["penalty_never_fired"]) {
    spdlog::warn("the absorption penalty NEVER FIRED in job {}: see report.md", id.get<std::string>());
  }
  return any_failed ? kExitJobFailed : kExitOk;
}

}  // namespace sweep::launcher
