// The settings of `sweep submit`: schema defaults, then the sweep file's [slurm] section, then
// the command line; each value checked by the schema, plus the checks that span several keys.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/sweep_file.h"

namespace sweep::launcher {

// Defaults live in the schema (config_schema.cpp); resolve_slurm_settings fills every field.
struct SlurmSettings {
  int64_t nodes{};
  int64_t ntasks_per_node{};
  int64_t gpus_per_task{};  // 0: no GPU request
  std::string time;         // empty: the partition's limit
  std::string partition;    // empty: the cluster's default
  std::string account;      // empty: the user's default
  int64_t array{};          // 0: a single job
  int64_t max_requeues{};
  int64_t signal_lead{};    // seconds
  std::vector<std::string> sbatch_args;
};

// A command-line value: the option as typed ("--time"), the key it sets and its value.
struct SlurmFlag {
  std::string flag;
  std::string key;  // "slurm.time"
  nlohmann::json value;
};

// Throws ConfigError naming where the value came from (file:line or the option), the key and the value.
SlurmSettings resolve_slurm_settings(const SweepSpec& spec, const std::vector<SlurmFlag>& command_line);

}  // namespace sweep::launcher
