// The memory a job will need, estimated from its settings before any work, so that an impossible
// size (a batch of 1e9 rows, a synthetic hierarchy of 3^60 features) is refused up front with the
// settings named, not met per job as an allocation failure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/grid.h"

namespace sweep::launcher {

struct MemoryPart {
  std::string what;  // what takes the memory, naming the settings that decide it
  double bytes = 0;
};

// The parts of one rank's memory for `job` (d_in: its activation width). On a GPU only the host's
// share (the synthetic data) is counted.
std::vector<MemoryPart> job_memory(const PlannedJob& job, int64_t d_in);

// Throws ConfigError (naming `where`, the job and its largest part) when `ranks_here` ranks of
// this job would not fit in 90% of `memory_bytes` (the memory available when the sweep starts).
void check_memory(const PlannedJob& job, int64_t d_in, int ranks_here, double memory_bytes, const std::string& where);

}  // namespace sweep::launcher
