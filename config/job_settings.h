// Turns a planned job's resolved dotted-key configuration into the typed settings of the worker
// (JobConfig) and of the launcher (RunSettings), by the schema's rows (each names its member).
#pragma once

#include <string>
#include <vector>

#include "config/grid.h"
#include "worker/job_config.h"

namespace sweep::launcher {

// The run.* settings: how the launcher treats a job's attempts and progress, not what it computes.
struct RunSettings {
  int jobs_per_process = 0;         // side by side in one process (0: one per core on a CPU, one on a GPU)
  int max_attempts = 2;              // failed attempts after which a job stays failed
  double progress_seconds = 10.0;    // between a running job's progress lines
  double heartbeat_seconds = 10.0;   // between a running job's heartbeats in its state.json
  double stale_after_seconds = 300;  // a running job with an older heartbeat counts as interrupted
};

// Where a job's configuration in plan.json holds its data.normalize factor (sharding/normalization.h).
inline constexpr const char* kNormalizeFactorKey = "data.normalize_factor";

worker::JobConfig to_job_config(const PlannedJob& job);
// The data settings alone (also used by `sweep data export` and the pre-flight data check).
// The key that names a file or cache source's data: "data.paths" (files) or "data.path" (a cache).
const char* data_source_key(const nlohmann::json& resolved);

sharding::DataConfig to_data_config(const nlohmann::json& resolved);
RunSettings to_run_settings(const nlohmann::json& resolved);

// The keys of rows that bind a member of a struct to_job_config, to_data_config and
// to_run_settings do not fill (a row bound to a struct added without filling it here).
std::vector<std::string> bound_settings_left_unfilled();

}  // namespace sweep::launcher
