// The checks of a sweep's data before any work: every distinct data source opened (and, for files,
// every shard validated) once, and enough training rows for a batch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/grid.h"

namespace sweep::launcher {

// Opens every distinct data source once, so a bad shard stops the sweep before any training.
// Returns the activation width of every job's data, by job id.
// Throws ConfigError naming the setting and what is wrong.
std::map<std::string, int64_t> check_data(const SweepSpec& spec, const std::vector<PlannedJob>& jobs);

}  // namespace sweep::launcher
