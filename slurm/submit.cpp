// Submission: validation (sweep file, grid, Slurm settings, output path), the files under
// <out>/slurm/, and running `sbatch --parsable` with its answer or its error reported.
#include "slurm/submit.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>
#include <sstream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/exit_codes.h"
#include "config/config_error.h"
#include "config/config_schema.h"
#include "config/grid.h"
#include "slurm/script.h"

extern char** environ;

namespace sweep::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Command-line options and the keys they set; the help text is the schema's.
const std::pair<const char*, const char*> kFlags[] = {
    {"--nodes", "slurm.nodes"},         {"--ntasks-per-node", "slurm.ntasks_per_node"},
    {"--gpus-per-task", "slurm.gpus_per_task"}, {"--time", "slurm.time"},
    {"--partition", "slurm.partition"}, {"--account", "slurm.account"},
    {"--array", "slurm.array"},         {"--max-requeues", "slurm.max_requeues"},
    {"--signal-lead", "slurm.signal_lead"},     {"--sbatch-arg", "slurm.sbatch_args"},
};

// The log path goes into an #SBATCH line unquoted (Slurm expands % in it) and into a double-quoted echo.
void check_out(const fs::path& out) {
  if (out.string().find_first_of(" \t\n\"'%\\$`") != std::string::npos) {
    throw ConfigError("output directory \"" + out.string() +
                      "\": Slurm's #SBATCH --output line cannot hold white space, quotes, %, $, ` or \\; choose "
                      "another directory with --out");
  }
}

struct Sbatch {
  bool found = true;
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Sbatch run_sbatch(const fs::path& script) {
  Sbatch result;
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::string path = script.string();
  char* argv[] = {const_cast<char*>("sbatch"), const_cast<char*>("--parsable"), path.data(), nullptr};
  pid_t pid;
  int spawned = posix_spawnp(&pid, "sbatch", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (spawned == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) result.output.append(buf, static_cast<size_t>(n));
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  close(fds[0]);
  result.found = spawned != ENOENT;
  if (spawned != 0 && result.found) result.output = std::string("cannot run sbatch: ") + std::strerror(spawned);
  return result;
}

// The job id of `sbatch --parsable` ("123" or "123;cluster"), after any warnings it printed.
std::string job_id_of(const std::string& output) {
  std::istringstream lines(output);
  std::string line, id;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, std::regex(R"(\s*(\d+)(;\S*)?\s*)"))) id = m[1];
  }
  return id;
}

std::string trimmed(const std::string& s) {
  auto end = s.find_last_not_of(" \n\t");
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

void print_submitted(const std::string& id, const SweepSpec& spec, size_t jobs, const SlurmSettings& s,
                     const fs::path& out) {
  std::string array = s.array > 0 ? " (array tasks 0-" + std::to_string(s.array - 1) + ")" : "";
  std::string log = log_file_pattern(out, s.array > 0);
  log = std::regex_replace(std::regex_replace(log, std::regex("%A|%j"), id), std::regex("%a"), "<task>");
  std::printf("submitted Slurm job %s%s: sweep %s, %zu jobs, %lld node(s) x %lld rank(s)\n", id.c_str(), array.c_str(),
              spec.name.c_str(), jobs, static_cast<long long>(s.nodes), static_cast<long long>(s.ntasks_per_node));
  std::printf("  batch script: %s\n", (out / "slurm" / "sweep.sbatch").c_str());
  std::printf("  Slurm log:    %s\n", log.c_str());
  std::printf("  report:       %s once the sweep is done\n", (out / "report.md").c_str());
  std::printf("  follow it:    squeue -j %s\n", id.c_str());
}

}  // namespace

void add_submit_options(CLI::App& submit, SubmitOptions& options) {
  submit.add_option("file", options.file, "sweep file (TOML)")->required()->check(CLI::ExistingFile);
  submit.add_option_function<std::string>("--out", [&options](const std::string& v) { options.out = v; },
                                          "output directory, shared by every task and requeue (default: runs/<name>)");
  submit.add_flag("--dry-run", options.dry_run, "print the batch script; write and submit nothing");
  submit.add_option("--set", options.overrides,
                    "override a setting: key=value (grid.<key>=[...] for a grid axis); every run of the batch job "
                    "gets it too");
  for (const auto& [flag, key] : kFlags) {
    const KeySpec* spec = find_key(key);
    auto store = [&options, flag = std::string(flag), key = std::string(key)](json value) {
      options.slurm.push_back({flag, key, std::move(value)});
    };
    std::string help = spec->help.substr(spec->help.find(": ") + 2) + " [" + key + "]";
    switch (spec->kind) {
      case ValueKind::Int: submit.add_option_function<int64_t>(flag, store, help); break;
      case ValueKind::StringList:
        submit.add_option_function<std::vector<std::string>>(flag, store, help + "; repeat it, as --sbatch-arg=--mem=0")
            ->allow_extra_args(false);
        break;
      default: submit.add_option_function<std::string>(flag, store, help); break;
    }
  }
}

int submit_sweep(const SubmitOptions& options) {
  SweepSpec spec;
  size_t jobs = 0;
  SlurmSettings settings;
  fs::path out;
  try {
    spec = load_sweep(options.file, options.overrides);
    jobs = expand_grid(spec).size();
    settings = resolve_slurm_settings(spec, options.slurm);
    out = fs::absolute(options.out.value_or(fs::path("runs") / spec.name)).lexically_normal();
    check_out(out);
  } catch (const ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  ScriptPaths paths{fs::read_symlink("/proc/self/exe"), out / "slurm" / options.file.filename(), out,
                    fs::current_path(), out / "slurm" / "sweep.sbatch"};
  std::string script = render_sbatch_script(spec.name, settings, paths, options.overrides);
  if (options.dry_run) {
    std::fputs(script.c_str(), stdout);
    return kExitOk;
  }
  fs::create_directories(out / "slurm");
  write_file_atomic(paths.sweep_file, spec.text);
  write_file_atomic(paths.script, script);
  Sbatch sbatch = run_sbatch(paths.script);
  if (!sbatch.found) {
    spdlog::error("sbatch not found on PATH: submit from a machine with Slurm's client commands (the batch script "
                  "is {}; run it there with sbatch)", paths.script.string());
    return kExitSubmitFailed;
  }
  std::string id = job_id_of(sbatch.output);
  if (sbatch.exit_code != 0 || id.empty()) {
    spdlog::error("sbatch refused {} (exit code {}): {}", paths.script.string(), sbatch.exit_code, trimmed(sbatch.output));
    return kExitSubmitFailed;
  }
  print_submitted(id, spec, jobs, settings, out);
  return kExitOk;
}

}  // namespace sweep::launcher
