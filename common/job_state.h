// A job's state in the sweep directory, <out>/jobs/<id>/state.json: pending, running (with its
// owner and heartbeat), done, failed or preempted. Written atomically by the job's claim holder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/job_progress.h"

namespace sweep {

enum class JobPhase { Pending, Running, Done, Failed, Preempted };

struct JobState {
  JobPhase phase = JobPhase::Pending;
  int attempts = 0;     // times the job was started or resumed
  int failures = 0;     // attempts that ended failed
  std::string owner;    // "host:pid" of the process whose group leader runs it
  std::string host;
  int pid = 0;
  int world_rank = 0;
  double heartbeat = 0;  // seconds since the epoch
  int64_t step = 0, steps = 0;
  JobProgress progress;  // at the latest heartbeat: speed, ETA, loss, L0, flagged pairs
  std::string reason;    // why it failed
};

const char* phase_name(JobPhase phase);
nlohmann::json to_json(const JobState& state);
JobState job_state_from_json(const nlohmann::json& j);

std::filesystem::path state_file(const std::filesystem::path& job_dir);
// A missing state.json means pending; one that does not parse (never written by us) is an error.
JobState read_job_state(const std::filesystem::path& job_dir);
void write_job_state(const std::filesystem::path& job_dir, const JobState& state);

double now_seconds();
std::string this_host();
// The owner name of this process, "host:pid@start": the start time (clock ticks since boot, from
// /proc) tells this process from a later one that reuses its pid.
std::string owner_name(int pid);
// A process of this host that no longer exists, or whose pid now belongs to a process started at
// another time than `owner` names (a process elsewhere cannot be checked: false).
bool process_gone(const std::string& host, int pid, const std::string& owner);
// A running job whose owner still shows signs of life: a heartbeat younger than
// `stale_after_seconds`, and, when the owner is on this host, its process still there.
bool owner_alive(const JobState& state, double stale_after_seconds);

}  // namespace sweep
