// Sweep output directories written by hand (plan.json, each job's result.json and metrics.jsonl)
// for report tests that need exact metrics: a job equal to its baseline, a penalty that never
// fired, a failed, a preempted and a missing job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::testing {

struct CraftedJob {
  std::string id;
  nlohmann::json params;        // the grid point; a baseline has "absorption.enabled": false
  std::string status = "done";  // "done", "failed", "preempted"; "missing" writes no result.json
  nlohmann::json metrics = nlohmann::json::object();
  std::string error;     // for jobs that did not finish
  int attempts = 0;      // written to state.json when > 0
  int logged_steps = 8;  // lines of metrics.jsonl
};

CraftedJob done_job(std::string id, nlohmann::json params, nlohmann::json metrics);
CraftedJob unfinished_job(std::string id, nlohmann::json params, std::string status, std::string error, int attempts,
                          int logged_steps);

// Held-out metrics as a job writes them; `fired` is the share of steps the penalty fired on.
nlohmann::json crafted_metrics(double explained_variance, double l0, double gt_mcc, double gt_absorption, double fired);
void write_crafted_sweep(const std::filesystem::path& out, const std::string& name,
                         const std::vector<CraftedJob>& jobs);

}  // namespace sweep::testing
