// Runs or resumes a sweep on every rank of the MPI world (one process works too): validate
// everything first, split the world into groups of train.ranks_per_job ranks, let each group
// take jobs until none are left, then world rank 0 writes the report.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/exit_codes.h"
#include "launcher/mpi_session.h"

namespace sweep::launcher {

struct SweepOptions {
  std::filesystem::path file;
  std::optional<std::filesystem::path> out;  // default: runs/<name>
  std::vector<std::string> overrides;        // --set key=value
  bool fresh = false;                        // move an existing output directory aside first
};

// Collective over MPI_COMM_WORLD. Returns the process exit code (common/exit_codes.h; the same on
// every rank).
int run_sweep(const SweepOptions& options, const MpiSession& mpi);

}  // namespace sweep::launcher
