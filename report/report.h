// The sweep report: report.json (every job with its params, status, metrics, difference to its
// baseline and training curve, plus the verdicts), rendered as report.md and report.html.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/verdicts.h"

namespace sweep::launcher {

// One job as the report reads it: its result.json and its training curve from metrics.jsonl,
// as columns ({"step": [...], "loss": [...], ...}; empty when the job logged nothing).
struct JobRecord {
  nlohmann::json result;
  nlohmann::json curve = nlohmann::json::object();
};

// The sweep file's report.* settings (config/config_schema.cpp has their help).
struct ReportSettings {
  double ev_tolerance = kDefaultEvTolerance;
};

// jobs: every job of the plan, in plan order. extra_replica_keys: the sweep's grid.replicas
// (seed and data.seed are always replica keys).
nlohmann::json build_report(const std::string& sweep_name, const std::vector<JobRecord>& jobs,
                            const std::vector<std::string>& extra_replica_keys = {}, const ReportSettings& settings = {});
// Writes report.json, report.md and report.html into out_dir.
void write_report(const std::filesystem::path& out_dir, const nlohmann::json& report);

}  // namespace sweep::launcher
