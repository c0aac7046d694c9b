// Claims on jobs, so that any number of sweep processes (one MPI world, or Slurm array tasks
// sharing a directory) never train the same job at once: <job_dir>/claim, created O_EXCL.
#pragma once

#include <filesystem>
#include <string>

namespace sweep::launcher {

struct ClaimOwner {
  std::string owner;  // "host:pid"
  std::string host;
  int pid = 0;
};

ClaimOwner this_process();

// Takes the job when nobody holds it, or when its holder is gone: a process of this host that
// no longer exists, or no heartbeat (state.json, else the claim's own time) for stale_after s.
bool try_claim(const std::filesystem::path& job_dir, const ClaimOwner& me, double stale_after_seconds);
// Removes the claim if it is still ours.
void release_claim(const std::filesystem::path& job_dir, const ClaimOwner& me);

}  // namespace sweep::launcher
