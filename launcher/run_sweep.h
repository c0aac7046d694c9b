// Runs or resumes a sweep on every rank of the MPI world (one process works too): validate
// everything first, split the world into groups of train.ranks_per_job ranks, let each group
// take jobs until none are left, then world rank 0 writes the report.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "launcher/mpi_session.h"

namespace sweep::launcher {

struct SweepOptions {
  std::filesystem::path file;
  std::optional<std::filesystem::path> out;  // default: runs/<name>
  std::vector<std::string> overrides;        // --set key=value
  bool fresh = false;                        // move an existing output directory aside first
};

// 75 (EX_TEMPFAIL): stopped by a signal before the end; re-running the same command continues.
enum ExitCode { kExitOk = 0, kExitInvalidInput = 2, kExitJobFailed = 3, kExitPreempted = 75 };

// Collective over MPI_COMM_WORLD. Returns the process exit code (the same on every rank).
int run_sweep(const SweepOptions& options, const MpiSession& mpi);

}  // namespace sweep::launcher
