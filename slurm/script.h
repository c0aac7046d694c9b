// Renders the Slurm batch script of a sweep from the compiled-in template: fills each {{name}}
// placeholder, repeats a line once per item of a list and leaves out lines whose value is empty.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "slurm/settings.h"

namespace sweep::launcher {

struct ScriptPaths {
  std::filesystem::path sweep;       // the `sweep` executable
  std::filesystem::path sweep_file;  // the copy of the sweep file the job runs
  std::filesystem::path out;         // the sweep's output directory
  std::filesystem::path workdir;     // where relative paths in the sweep file start
  std::filesystem::path script;      // where the script is written
};

// `overrides`: the --set key=value words every run of the sweep gets.
std::string render_sbatch_script(const std::string& sweep_name, const SlurmSettings& settings, const ScriptPaths& paths,
                                 const std::vector<std::string>& overrides = {});

// Slurm's log file of the job (or array task): <out>/slurm/sweep-%j.out, with %A_%a for arrays.
std::string log_file_pattern(const std::filesystem::path& out, bool array);

// Each line of `text` is written once per item of the values of its placeholders (all of one line's
// placeholders with several items must have as many), not at all when one has none. A placeholder
// with no entry in `values` is a bug: std::logic_error.
std::string render_template(const std::string& text, const std::map<std::string, std::vector<std::string>>& values);

// `s` as one word for the shell, in single quotes.
std::string shell_quote(const std::string& s);

}  // namespace sweep::launcher
