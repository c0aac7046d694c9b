// The probes of the probe-based absorption metric, trained once per sweep: one file per distinct
// data set and labels among the jobs (<out>/probes/<key>.safetensors), kept across resumes and
// checked against the data they were trained on, so every job of a sweep is scored against the
// same probes.
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/grid.h"

namespace sweep::launcher {

// The probe file a job with these settings reads; empty without data.labels.
std::filesystem::path probe_file_for(const std::filesystem::path& out, const nlohmann::json& resolved);

// World rank 0, before any job runs: trains the probe files that `jobs` need and that are missing,
// and checks the others. Throws ConfigError when a probe file was trained on activation or label
// files that have changed since, or when the labels leave no labelled training row.
void prepare_probes(const std::filesystem::path& out, const std::vector<PlannedJob>& jobs);

}  // namespace sweep::launcher
