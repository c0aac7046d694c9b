// What a re-run checks and mends in an existing output directory before it trains.
#pragma once

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/grid.h"

namespace sweep::launcher {

// --fresh: `out` moves aside (never deleted) to <out>.old-<n>. Throws ConfigError while a live
// process still runs one of its jobs (that job's result would land in the new directory).
void move_aside(const std::filesystem::path& out, double stale_after_seconds);

// The fingerprint of every distinct set of activation files the jobs read, by data.paths.
nlohmann::json fingerprint_data(const std::vector<PlannedJob>& jobs);

// Throws ConfigError naming each changed file when `now` differs from the old plan's
// fingerprints in size or contents; a changed modification time alone is a warning.
void check_data_unchanged(const nlohmann::json& old_plan, const nlohmann::json& now, const std::filesystem::path& plan_file);

// A job whose files are damaged runs again instead of crashing the sweep or passing for done (see
// the definition for which files are kept aside). `planned`: the job's plan entry.
void requeue_if_damaged(const std::filesystem::path& dir, const nlohmann::json& planned);

}  // namespace sweep::launcher
