// `sweep plan`: the sweep file, its grid, data and memory checked as `sweep FILE.toml` checks them,
// then one line per job; an existing output directory is read, never written.
#include "launcher/plan_command.h"

#include <cstdio>
#include <map>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/byte_size.h"
#include "common/exit_codes.h"
#include "common/job_state.h"
#include "config/config_error.h"
#include "config/grid.h"
#include "config/job_settings.h"
#include "config/sweep_plan.h"
#include "launcher/data_check.h"
#include "launcher/memory_check.h"
#include "launcher/output_check.h"
#include "report/files.h"
#include "report/format.h"
#include "report/grid_points.h"
#include "worker/matmul_rate.h"

namespace sweep::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// FLOPs of one dense training step: the encoder's and decoder's products forward (2 each) and
// backward (4 each), of batch x d_in x d_sae multiply-adds.
double step_flops(const PlannedJob& job, int64_t d_in) {
  const auto cfg = to_job_config(job);
  return 12.0 * static_cast<double>(cfg.train.batch_size) * static_cast<double>(d_in) * static_cast<double>(cfg.sae.d_sae);
}

// A job's state in the output directory: "new" when it has no directory there yet.
json state_of(const fs::path& out, const PlannedJob& job) {
  const auto dir = out / "jobs" / job.id;
  if (!fs::exists(dir / "state.json")) return {{"state", "new"}, {"step", 0}};
  try {
    const auto state = read_job_state(dir);
    return {{"state", phase_name(state.phase)}, {"step", state.step}};
  } catch (const std::exception&) {
    return {{"state", "damaged (a run keeps it aside and runs the job again)"}, {"step", 0}};
  }
}

// The plan; `data_error` says why the data could not be opened (the jobs are listed all the same,
// without memory or time).
json plan_of(const PlanOptions& options, std::string& data_error) {
  const auto spec = load_sweep(options.file, options.overrides);
  auto jobs = expand_grid(spec);
  std::map<std::string, int64_t> widths;
  try {
    widths = check_data(spec, jobs);
  } catch (const ConfigError& e) {
    data_error = e.what();
  }
  for (const auto& job : jobs) {
    if (widths.count(job.id)) check_memory(job, widths.at(job.id), 1, available_memory_bytes(), spec.file.filename().string());
  }
  const auto out = output_directory(options.out, spec);
  if (fs::exists(out / "plan.json")) jobs = extend_plan(read_json(out / "plan.json"), out / "plan.json", spec, jobs);
  // The time estimate: the dense products at this machine's float32 rate, on a CPU.
  const bool cpu = spec.base["train.device"] == "cpu" || (spec.base["train.device"] == "auto" && !torch::cuda::is_available());
  const double rate = cpu ? worker::matmul_flops_per_second(torch::kCPU, torch::kFloat, 1024) : 0.0;
  const auto replicas = replica_keys(spec.replicas);
  json plan = {{"sweep", spec.name},
               {"out", out.string()},
               {"jobs", json::array()},
               {"flops_per_second", rate},
               {"ignored", ignored_settings(spec)}};
  for (const auto& job : jobs) {
    json point = json::object(), replica = json::object();
    for (const auto& [key, value] : job.params.items()) {
      (std::find(replicas.begin(), replicas.end(), key) != replicas.end() ? replica : point)[key] = value;
    }
    const bool known = widths.count(job.id) > 0;
    double memory = 0;
    if (known) {
      for (const auto& part : job_memory(job, widths.at(job.id))) memory += part.bytes;
    }
    const auto steps = to_job_config(job).train.steps;
    json entry = {{"id", job.id},
                  {"point", job_label({{"params", point}, {"baseline", job.baseline}, {"label", job.label},
                                       {"label_keys", job.label_keys}})},
                  {"replica", replica},
                  {"params", job.params},
                  {"baseline", job.baseline},
                  {"steps", steps},
                  {"memory_bytes", known ? json(memory) : json()},
                  {"estimated_seconds", rate > 0 && known ? json(static_cast<double>(steps) * step_flops(job, widths.at(job.id)) / rate) : json()}};
    entry.update(state_of(out, job));
    plan["jobs"].push_back(entry);
  }
  return plan;
}

}  // namespace

int print_plan(const PlanOptions& options) {
  json plan;
  std::string data_error;
  try {
    plan = plan_of(options, data_error);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  } catch (const std::exception& e) {  // an unreadable plan.json or state in the output directory
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  if (!data_error.empty()) plan["data_error"] = data_error;
  const int code = data_error.empty() ? kExitOk : kExitInvalidInput;
  if (options.json) {
    std::printf("%s\n", plan.dump(2).c_str());
    return code;
  }
  std::printf("sweep %s: %zu jobs, output in %s\n", plan["sweep"].get<std::string>().c_str(), plan["jobs"].size(),
              plan["out"].get<std::string>().c_str());
  std::printf("%-12s  %-14s %9s  %9s  %-8s  %s\n", "job", "state", "memory", "time", "replica", "grid point");
  for (const auto& job : plan["jobs"]) {
    const std::string state = job["state"].get<std::string>() +
                              (job["step"].get<int64_t>() > 0 ? " " + job["step"].dump() + "/" + job["steps"].dump() : "");
    std::printf("%-12s  %-14s %9s  %9s  %-8s  %s\n", job["id"].get<std::string>().c_str(), state.c_str(),
                job["memory_bytes"].is_null() ? "?" : byte_size(job["memory_bytes"].get<double>()).c_str(),
                job["estimated_seconds"].is_null() ? "n/a"
                                                   : (">=" + format_duration(job["estimated_seconds"].get<double>())).c_str(),
                params_text(job["replica"]).c_str(), job["point"].get<std::string>().c_str());
  }
  if (plan["flops_per_second"].get<double>() > 0) {
    std::printf("time: a lower bound, the dense products alone at this machine's float32 rate (%.0f GFLOP/s on all its "
                "cores, as `sweep doctor` measures it); small SAEs take far longer than it, and jobs side by side "
                "share the cores\n",
                plan["flops_per_second"].get<double>() / 1e9);
  }
  for (const auto& note : plan["ignored"]) std::printf("%s\n", note.get<std::string>().c_str());
  if (!data_error.empty()) spdlog::error("{}", data_error);
  return code;
}

}  // namespace sweep::launcher
