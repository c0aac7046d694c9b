// Writes crafted sweep output directories in the layout `sweep` writes, with training curves
// that fall towards each job's final metrics.
#include "tests/crafted_sweep.h"

#include <fstream>

#include "common/job_state.h"
#include "config/grid.h"
#include "sae/penalty.h"

namespace sweep::testing {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

JobPhase phase_of(const std::string& status) {
  if (status == "done") return JobPhase::Done;
  if (status == "failed") return JobPhase::Failed;
  if (status == "preempted") return JobPhase::Preempted;
  return JobPhase::Running;
}

}  // namespace

CraftedJob done_job(std::string id, json params, json metrics) {
  return {std::move(id), std::move(params), "done", std::move(metrics), "", 0, 8};
}

CraftedJob unfinished_job(std::string id, json params, std::string status, std::string error, int attempts,
                          int logged_steps) {
  return {std::move(id),    std::move(params), std::move(status), json::object(),
          std::move(error), attempts,          logged_steps};
}

json crafted_metrics(double explained_variance, double l0, double gt_mcc, double gt_absorption, double fired) {
  return {{"explained_variance", explained_variance},
          {"mse", (1 - explained_variance) * 0.5},
          {"l0", l0},
          {"dead_fraction", 0.02},
          {"gt_mcc", gt_mcc},
          {"gt_f1", gt_mcc - 0.05},
          {"gt_absorption", gt_absorption},
          {"absorption_pairs_mean", fired > 0 ? 4.0 * fired : 0.0},
          {"absorption_active_fraction", fired},
          {"absorption_loss_mean", fired > 0 ? 0.01 : 0.0}};
}

void write_crafted_sweep(const fs::path& out, const std::string& name, const std::vector<CraftedJob>& jobs) {
  fs::remove_all(out);
  json plan = {{"sweep", name}, {"jobs", json::array()}};
  for (size_t i = 0; i < jobs.size(); ++i) {
    const CraftedJob& job = jobs[i];
    json config = {{"absorption.enabled", job.params.value("absorption.enabled", true)}, {"train.steps", 200}};
    for (const auto& [key, value] : job.params.items()) config[key] = value;
    bool baseline = true;  // as the planner marks it: every penalty off
    for (const auto& entry : sae::penalties()) baseline = baseline && sae::penalty_is_off(entry, config);
    plan["jobs"].push_back({{"index", i},
                            {"id", job.id},
                            {"params", job.params},
                            {"baseline", baseline},
                            {"baseline_params", launcher::params_without_penalties(job.params)},
                            {"config", config}});
    const fs::path dir = out / "jobs" / job.id;
    fs::create_directories(dir);
    if (job.status == "missing") continue;

    json result = {{"id", job.id}, {"params", job.params}, {"config", config}, {"status", job.status}};
    if (job.status == "done") {
      result["metrics"] = job.metrics;
      result["train"] = {{"steps", 200},
                         {"tokens", 51200.0},
                         {"seconds", 2.5 + static_cast<double>(i)},
                         {"ranks", 1},
                         {"device", "cpu"}};
    } else {
      result["error"] = job.error;
    }
    if (job.attempts > 0) {
      JobState state;
      state.phase = phase_of(job.status);
      state.attempts = job.attempts;
      write_job_state(dir, state);
    }
    std::ofstream(dir / "result.json") << result.dump(2);

    std::ofstream log(dir / "metrics.jsonl");
    const double l0 = job.metrics.value("l0", 20.0);
    const double fired = job.metrics.value("absorption_active_fraction", 0.0);
    for (int s = 1; s <= job.logged_steps; ++s) {
      const double decay = 1.0 / s;
      log << json({{"step", 25 * s},
                   {"loss", 0.2 + decay},
                   {"recon", 0.1 + 0.8 * decay},
                   {"sparse", 0.1 + 0.2 * decay},
                   {"aux", 0.0},
                   {"absorption", fired * 0.01 * decay},
                   {"l0", l0 + 30 * decay},
                   {"flagged_pairs", fired > 0 ? s % 3 : 0},
                   {"lr", 1e-3}})
                 .dump()
          << "\n";
    }
  }
  std::ofstream(out / "plan.json") << plan.dump(2);
}

}  // namespace sweep::testing
