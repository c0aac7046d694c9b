// Expands a sweep into jobs: the cartesian product of the grid axes, plus baseline jobs with
// the penalty off; each job is checked as a whole and gets an id derived from its config.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/sweep_file.h"

namespace sweep::launcher {

struct PlannedJob {
  std::string id;
  nlohmann::json params;    // swept keys -> values (baselines: absorption.enabled = false)
  nlohmann::json resolved;  // every key
  bool baseline = false;   // every penalty off
  std::string label;        // its [[grid.points]] point's label ("" for none)
  nlohmann::json label_keys = nlohmann::json::array();  // the keys of params that point set
};

// Throws ConfigError for a grid point that is invalid or whose penalty can never fire.
// Explicit points ([[grid.points]]) are crossed with the axes (zip groups walking together); a
// swept setting that a job's architecture ignores is left at the sweep's value and out of its
// params, so it neither splits nor repeats jobs.
std::vector<PlannedJob> expand_grid(const SweepSpec& spec);

// A job's params without the penalties' settings: equal for a penalised job and its baseline
// (plan.json's "baseline_params", by which the report pairs them).
nlohmann::json params_without_penalties(const nlohmann::json& params);

// "sae.k is ignored for relu jobs", once per swept setting and architecture that ignores it.
std::vector<std::string> ignored_settings(const SweepSpec& spec);

// Stable id: a hash of the resolved settings that affect results (see KeySpec::affects_results).
std::string job_id(const nlohmann::json& resolved);

// Bytes the absorption penalty's dense d_sae x d_sae matrices take during a step.
// The synthetic hierarchy's feature count: n_roots trees of `depth` levels, `branching` children
// each (inf when it overflows a double).
double synthetic_feature_count(const nlohmann::json& resolved);
double absorption_matrix_bytes(int64_t d_sae);
// This machine's memory.
double physical_memory_bytes();
// What the machine can give now without swapping (/proc/meminfo's MemAvailable): what up-front
// memory checks compare with, since other processes hold the rest.
double available_memory_bytes();

}  // namespace sweep::launcher
