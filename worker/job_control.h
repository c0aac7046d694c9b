// How the launcher steers a running job: this process's stop request, the leader's heartbeat,
// and what became of the job (done, failed, or stopped at a checkpoint to be resumed).
#pragma once

#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

namespace sweep::worker {

struct JobControl {
  // Polled at every step boundary on every rank; the group stops when any rank says so.
  std::function<bool()> stop_requested = [] { return false; };
  // Called on the group leader after every step with the steps done; it throttles itself.
  std::function<void(int64_t steps_done)> heartbeat = [](int64_t) {};
};

enum class JobStatus { Done, Failed, Preempted };

struct JobOutcome {
  JobStatus status = JobStatus::Failed;
  nlohmann::json result;  // result.json for done and failed jobs; {"step": ...} when preempted
};

}  // namespace sweep::worker
