// `sweep submit`: checks a sweep as a run would, writes its Slurm batch script and a copy of the
// sweep file under <out>/slurm/, and hands the script to sbatch.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "launcher/slurm_settings.h"

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

// Exit code when sbatch is not installed or refuses the job (2: invalid input, as for a run).
constexpr int kExitSubmitFailed = 4;

// The options of the `submit` subcommand: the file, --out, --dry-run and one option per slurm.* key.
void add_submit_options(CLI::App& submit, SubmitOptions& options);

int submit_sweep(const SubmitOptions& options);

}  // namespace sweep::launcher
