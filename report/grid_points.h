// Grid points: jobs that differ only in replica keys (seed, data.seed and those grid.replicas
// names) are replicas of one point. Per point: n, mean and sd of each metric over its finished
// replicas; for a penalised point, the differences to its baseline point paired by replica, with
// 95% t intervals. Verdicts, tables and plots all read these.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// seed and data.seed, then `extra` (grid.replicas) without repeats.
std::vector<std::string> replica_keys(const std::vector<std::string>& extra);
// The params of a job without its absorption.* keys: jobs sharing them share a baseline.
nlohmann::json non_absorption_params(const nlohmann::json& params);
// jobs: report.json's jobs (id, status, params, baseline, metrics). Returns the points in the
// order of their first job: {"label", "params", "baseline", "jobs", "n", "metrics": {m: {n, mean,
// sd}}, and for a penalised point with a baseline point "baseline_point" (its label) and
// "paired": {m: {n, mean, sd, ci_low, ci_high, distinguishable, relative}}}. gt_pairs_in_region is
// paired with the baseline's share at the penalised job's thresholds (report/region_share.h).
// "relative": {mean, ci_low, ci_high, baseline_mean}, the difference and its interval divided by
// |baseline_mean|, the baseline's mean over the paired replicas (kRelativeEffectRule); absent when
// that mean is 0.
// How report.json's relative effects are computed, for the report to state.
extern const char* const kRelativeEffectRule;

nlohmann::json grid_points(const nlohmann::json& jobs, const std::vector<std::string>& replica_keys);

}  // namespace sweep::launcher
