// plan.json, the sweep's frozen list of jobs: written at the first start; a re-run of a changed
// sweep file may add jobs to it, but never silently changes the jobs it already holds.
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/grid.h"
#include "config/sweep_file.h"

namespace sweep::launcher {

nlohmann::json plan_json(const SweepSpec& spec, const std::vector<PlannedJob>& jobs);
std::vector<PlannedJob> jobs_from_plan(const nlohmann::json& plan);

// The sweep's jobs in plan order: those already in `old_plan` keep their place, new grid points
// follow. Throws ConfigError listing the differing keys (old -> new, and where they are set)
// when the sweep file changes or drops jobs of the existing plan.
std::vector<PlannedJob> extend_plan(const nlohmann::json& old_plan, const std::filesystem::path& plan_file,
                                    const SweepSpec& spec, const std::vector<PlannedJob>& jobs);

}  // namespace sweep::launcher
