// How the launcher steers a running job: this process's stop request, the leader's per-step
// progress, and what became of the job (done, failed, or stopped at a checkpoint to be resumed).
#pragma once

#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/job_progress.h"

namespace sweep::worker {

struct JobControl {
  // Polled at every step boundary on every rank; the group stops when any rank says so.
  std::function<bool()> stop_requested = [] { return false; };
  // Called on the group leader after every step (heartbeats, progress lines); it throttles itself
  // and may throw (a failed write), which fails the job.
  std::function<void(const JobProgress&)> on_step = [](const JobProgress&) {};
};

enum class JobStatus { Done, Failed, Preempted };

struct JobOutcome {
  JobStatus status = JobStatus::Failed;
  nlohmann::json result;  // result.json for done and failed jobs; {"step": ...} when preempted
};

}  // namespace sweep::worker
