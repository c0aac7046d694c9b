// Helpers for tests that run programs: a per-process scratch directory, shell quoting, file
// reading, and running a command (sweep, or sweep under mpirun) with its output captured.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::testing {

// One temporary directory per test process, removed at exit unless SWEEP_KEEP_TEST_OUTPUT is set.
const std::filesystem::path& scratch();
std::string quote(const std::string& s);
std::string read_text(const std::filesystem::path& file);
nlohmann::json read_json(const std::filesystem::path& file);

struct RunResult {
  int exit_code = -1;
  std::string log;  // stdout and stderr together
};

// Runs `command` (each word quoted for the shell), output to scratch()/<log_name>.log.
RunResult run_command(const std::vector<std::string>& command, const std::string& log_name);
// The words that start `ranks` processes under mpirun, bounded by a time limit so a hang fails.
std::vector<std::string> mpirun(int ranks, int time_limit_seconds = 600);

}  // namespace sweep::testing
