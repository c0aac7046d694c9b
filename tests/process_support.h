// Helpers for tests that run programs: a per-process scratch directory, shell quoting, file
// reading, running a command (sweep, or sweep under mpirun) in the foreground or background.
#pragma once

#include <filesystem>
#include <functional>
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
// A command started in the background (its own process group), output to scratch()/<log_name>.log.
class BackgroundRun {
 public:
  BackgroundRun(const std::vector<std::string>& command, const std::string& log_name);
  ~BackgroundRun();  // kills the whole process group if it is still running
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;

  // Sends `signal` to every descendant process named `name` (say, each rank under mpirun, which
  // puts its ranks in process groups of their own) and waits until each has received it; returns
  // how many were signalled.
  int signal_descendants(const std::string& name, int signal) const;
  // The pids of every descendant process named `name`.
  std::vector<int> descendants(const std::string& name) const;
  // Polls `ready` every 20 ms for up to `seconds`; false if it never held or the run ended first.
  bool wait_until(const std::function<bool()>& ready, double seconds);
  // The exit code (-1 when killed by a signal or still running after `seconds`).
  int wait(double seconds);
  std::string log() const;

 private:
  int pid_ = -1;
  bool finished_ = false;
  int exit_code_ = -1;
  std::filesystem::path log_;
};

// The words that start `ranks` processes under mpirun, bounded by a time limit so a hang fails.
std::vector<std::string> mpirun(int ranks, int time_limit_seconds = 600);

// sweeps/quick.toml: the sweep that finishes in seconds.
std::string quick_toml();
// `sweep quick.toml --out scratch()/<name> args...`, alone (ranks = 0) or under mpirun -n ranks;
// output to scratch()/<name>.log.
RunResult run_quick(int ranks, const std::string& name, const std::vector<std::string>& args = {});

}  // namespace sweep::testing
