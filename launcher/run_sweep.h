// Runs a whole sweep in this process: validate everything first, then every job in plan order,
// then the report. Returns the process exit code (0 all done, 2 invalid input, 3 a job failed).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sweep::launcher {

struct SweepOptions {
  std::filesystem::path file;
  std::optional<std::filesystem::path> out;  // default: runs/<name>
  std::vector<std::string> overrides;        // --set key=value
};

enum ExitCode { kExitOk = 0, kExitInvalidInput = 2, kExitJobFailed = 3 };

int run_sweep(const SweepOptions& options);

}  // namespace sweep::launcher
