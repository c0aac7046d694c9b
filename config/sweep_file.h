// Reads a sweep file (TOML) and --set overrides into a base configuration and grid axes,
// validating every key, type and range; errors name file:line (or the --set) and the key.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

struct GridAxis {
  std::string key;
  std::vector<nlohmann::json> values;
  std::string where;  // "file:line" or "--set ..."
};

// One explicit grid point ([[grid.points]]): settings over the base, and an optional label.
struct GridPoint {
  nlohmann::json settings = nlohmann::json::object();
  std::string label;
  std::string where;  // "file:line"
};

struct SweepSpec {
  std::filesystem::path file;
  std::string name;
  nlohmann::json base;                        // every job setting, dotted, defaults filled in
  nlohmann::json slurm = nlohmann::json::object();  // slurm.* keys set (for `sweep submit`; no job sees them)
  nlohmann::json report;                      // report.* keys, defaults filled in (for the report; no job sees them)
  std::map<std::string, std::string> where;   // key -> where it was set (absent: default)
  std::vector<GridAxis> grid;
  // grid.zip: groups of grid axes walked together (the i-th values of each), not multiplied.
  std::vector<std::vector<std::string>> zips;
  std::string zip_where;                      // where grid.zip was set
  std::vector<GridPoint> points;              // [[grid.points]], crossed with the axes
  bool include_baseline = true;
  std::vector<std::string> replicas;          // grid.replicas: replica axes besides seed and data.seed
  std::string text;                           // the sweep file as read
};

// overrides: "key=value" strings; "grid.<key>=[...]" sets a grid axis.
SweepSpec load_sweep(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

}  // namespace sweep::launcher
