// One group of ranks working through the sweep: its leader claims the next job that still needs
// running, the whole group trains it, the leader records the job's state; until none is left.
#pragma once

#include <filesystem>
#include <vector>

#include "config/grid.h"
#include "launcher/job_claim.h"
#include "launcher/job_counter.h"
#include "launcher/progress_display.h"
#include "worker/communicator.h"

namespace sweep::launcher {

struct GroupRun {
  std::filesystem::path out;
  const std::vector<PlannedJob>* jobs = nullptr;  // in plan order
  worker::Communicator* group = nullptr;
  JobCounter* counter = nullptr;
  ClaimOwner me;
  int world_rank = 0;
  bool reports_sweep = false;  // logs the sweep's progress (one group of the world does)
  int gpu_index = 0;
  ProgressDisplay* display = nullptr;  // the group leader's
  double started = 0;                  // when the sweep started (seconds since the epoch)
};

// Collective over the group. Returns when no job is left for it or a stop was requested.
void run_group(const GroupRun& run);

}  // namespace sweep::launcher
