// `sweep submit`: checks a sweep as a run would, writes its Slurm batch script and a copy of the
// sweep file under <out>/slurm/, and hands the script to sbatch.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "common/exit_codes.h"
#include "slurm/settings.h"

namespace CLI {
class App;
}

namespace sweep::launcher {

struct SubmitOptions {
  std::filesystem::path file;
  std::optional<std::filesystem::path> out;  // default: runs/<name>
  std::vector<SlurmFlag> slurm;              // slurm.* values given on the command line
  std::vector<std::string> overrides;        // --set key=value, passed on to every run of the sweep
  bool dry_run = false;
};

// The options of the `submit` subcommand: the file, --out, --dry-run and one option per slurm.* key.
void add_submit_options(CLI::App& submit, SubmitOptions& options);

int submit_sweep(const SubmitOptions& options);

}  // namespace sweep::launcher
