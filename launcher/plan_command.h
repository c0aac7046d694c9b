// `sweep plan FILE.toml`: the jobs a sweep would run, checked as a run checks them, without
// writing or training anything: each job's id, grid point, replica, state in the output
// directory, memory and an estimate of its time.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sweep::launcher {

struct PlanOptions {
  std::filesystem::path file;
  std::optional<std::filesystem::path> out;
  std::vector<std::string> overrides;
  bool json = false;  // one JSON document on stdout instead of the table
};

// Returns the exit code (2 on invalid input, as a run would).
int print_plan(const PlanOptions& options);

}  // namespace sweep::launcher
