// Checks before any training that the output directory can be written and that its file system
// has room for the checkpoints and results the sweep will write.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "config/grid.h"

namespace sweep::launcher {

// The sweep's output directory: --out (a trailing "/" dropped) or runs/<name>.
std::filesystem::path output_directory(const std::optional<std::filesystem::path>& out, const SweepSpec& spec);

// Throws ConfigError naming the directory and the reason.
void check_writable(const std::filesystem::path& out);

// Bytes the sweep still needs: the SAE export of each job to run (d_in: each one's activation
// width), plus three checkpoints (two kept, one being written) of the largest job per group.
double bytes_needed(const std::vector<PlannedJob>& jobs_to_run, const std::vector<int64_t>& d_in, int groups);

// Bytes the report of these jobs (all of the plan) takes while it is rewritten: old and new side by side.
double report_bytes(const std::vector<PlannedJob>& jobs);

// Throws ConfigError when `free_bytes` is below `needed`, saying how much is missing.
void check_free_space(const std::filesystem::path& out, double needed, double free_bytes);

}  // namespace sweep::launcher
