// Tests for the Slurm batch script `sweep submit` writes: the requeue, signal and log lines, job
// arrays, optional lines, precedence (default < [slurm] < command line), cross-key checks, the
// template language, and that bash accepts the script.
#include <gtest/gtest.h>

#include <fstream>

#include "config/sweep_file.h"
#include "slurm/script.h"
#include "slurm/settings.h"
#include "tests/config_error_check.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::launcher;
using sweep::testing::expect_config_error;
using sweep::testing::scratch;

namespace {

SweepSpec load_text(const std::string& text) {
  fs::path file = scratch() / "sweep.toml";
  std::ofstream(file) << text;
  return load_sweep(file);
}

const ScriptPaths kPaths{"/opt/sweep/bin/sweep", "/data/runs/q/slurm/q.toml", "/data/runs/q", "/home/me/project",
                         "/data/runs/q/slurm/sweep.sbatch"};

std::string render(const std::string& text, const std::vector<SlurmFlag>& flags = {}) {
  return render_sbatch_script("q", resolve_slurm_settings(load_text(text), flags), kPaths);
}

bool has_line(const std::string& script, const std::string& line) {
  return ("\n" + script).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST(SlurmScript, DefaultsRequeueAppendAndSignalBeforeTheTimeLimit) {
  auto script = render("");
  for (const char* line : {"#!/bin/bash", "#SBATCH --job-name=sweep-q", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1",
                           "#SBATCH --requeue", "#SBATCH --open-mode=append", "#SBATCH --signal=B:USR1@120",
                           "#SBATCH --output=/data/runs/q/slurm/sweep-%j.out", "max_requeues=10",
                           "sweep='/opt/sweep/bin/sweep'", "out='/data/runs/q'"}) {
    EXPECT_TRUE(has_line(script, line)) << line << "\n" << script;
  }
  EXPECT_NE(script.find("srun --mpi=pmix \"$sweep\" \"$sweep_file\" --out \"$out\""), std::string::npos);
  EXPECT_NE(script.find("scontrol requeue \"$SLURM_JOB_ID\""), std::string::npos);
  EXPECT_NE(script.find("trap 'forward USR1' USR1"), std::string::npos);
  EXPECT_NE(script.find("trap 'forward TERM' TERM"), std::string::npos);
  // Unset settings leave their lines out; every placeholder is filled.
  for (const char* absent : {"--array", "--gpus-per-task", "--time", "--partition", "--account", "{{", "}}"}) {
    EXPECT_EQ(script.find(absent), std::string::npos) << absent;
  }
}

TEST(SlurmScript, ArrayTasksShareTheSweepAndLogApart) {
  auto script = render("[slurm]\narray = 4\n");
  EXPECT_TRUE(has_line(script, "#SBATCH --array=0-3")) << script;
  EXPECT_TRUE(has_line(script, "#SBATCH --output=/data/runs/q/slurm/sweep-%A_%a.out")) << script;
  EXPECT_EQ(script.find("sweep-%j.out"), std::string::npos);
}

TEST(SlurmScript, EverySettingReachesItsLine) {
  auto script = render(
      "[slurm]\nnodes = 2\nntasks_per_node = 8\ngpus_per_task = 1\ntime = \"1-00:00:00\"\npartition = \"gpu\"\n"
      "account = \"lab\"\nmax_requeues = 2\nsignal_lead = 300\nsbatch_args = [\"--exclusive\", \"--mem=0\"]\n");
  for (const char* line : {"#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-task=1",
                           "#SBATCH --time=1-00:00:00", "#SBATCH --partition=gpu", "#SBATCH --account=lab",
                           "max_requeues=2", "#SBATCH --signal=B:USR1@300", "#SBATCH --exclusive", "#SBATCH --mem=0"}) {
    EXPECT_TRUE(has_line(script, line)) << line << "\n" << script;
  }
}

TEST(SlurmScript, CommandLineWinsOverTheFileWhichWinsOverDefaults) {
  auto spec = load_text("[slurm]\ntime = \"02:00:00\"\npartition = \"gpu\"\nnodes = 2\nntasks_per_node = 4\n");
  auto s = resolve_slurm_settings(spec, {{"--time", "slurm.time", "00:30:00"},
                                         {"--ntasks-per-node", "slurm.ntasks_per_node", 8},
                                         {"--sbatch-arg", "slurm.sbatch_args", {"--exclusive"}}});
  EXPECT_EQ(s.time, "00:30:00");                                 // command line over file
  EXPECT_EQ(s.ntasks_per_node, 8);                               // command line over file
  EXPECT_EQ(s.sbatch_args, std::vector<std::string>{"--exclusive"});  // command line over default
  EXPECT_EQ(s.partition, "gpu");                                 // file over default
  EXPECT_EQ(s.nodes, 2);                                         // file over default
  EXPECT_EQ(s.signal_lead, 120);                                 // default
  EXPECT_EQ(s.array, 0);
}

TEST(SlurmScript, BadCommandLineValuesAreRefusedWithOptionAndKey) {
  auto spec = load_text("");
  expect_config_error([&] { resolve_slurm_settings(spec, {{"--time", "slurm.time", "90"}}); },
                      {"--time 90: slurm.time = \"90\": must be HH:MM:SS"});
  expect_config_error([&] { resolve_slurm_settings(spec, {{"--partition", "slurm.partition", "gpu a"}}); },
                      {"--partition gpu a: slurm.partition = \"gpu a\"", "only letters"});
  expect_config_error([&] { resolve_slurm_settings(spec, {{"--signal-lead", "slurm.signal_lead", 0}}); },
                      {"--signal-lead 0: slurm.signal_lead = 0"});
  expect_config_error([&] { resolve_slurm_settings(spec, {{"--sbatch-arg", "slurm.sbatch_args", {"mem=0"}}}); },
                      {"--sbatch-arg [\"mem=0\"]: slurm.sbatch_args", "starting with '-'"});
}

TEST(SlurmScript, SignalLeadMustBeShorterThanTheTimeLimit) {
  expect_config_error([&] { resolve_slurm_settings(load_text("[slurm]\ntime = \"00:02:00\"\n"), {}); },
                      {"sweep.toml (default of slurm.signal_lead): slurm.signal_lead = 120",
                       "not shorter than slurm.time = \"00:02:00\""});
  expect_config_error(
      [&] { resolve_slurm_settings(load_text("[slurm]\nsignal_lead = 600\n"), {{"--time", "slurm.time", "00:10:00"}}); },
      {"sweep.toml:2: slurm.signal_lead = 600"});
  EXPECT_EQ(resolve_slurm_settings(load_text("[slurm]\ntime = \"00:02:01\"\n"), {}).time, "00:02:01");
}

TEST(SlurmScript, RanksPerJobMustDivideTheRanksStarted) {
  expect_config_error(
      [&] { resolve_slurm_settings(load_text("[train]\nranks_per_job = 2\n[slurm]\nntasks_per_node = 3\n"), {}); },
      {"sweep.toml:4: slurm.ntasks_per_node = 3", "1 node(s) x 3 = 3 ranks", "train.ranks_per_job = 2"});
  auto s = resolve_slurm_settings(load_text("[train]\nranks_per_job = 4\n[slurm]\nnodes = 2\nntasks_per_node = 2\n"), {});
  EXPECT_EQ(s.nodes * s.ntasks_per_node, 4);
}

TEST(SlurmScript, PathsAreQuotedForTheShell) {
  ScriptPaths paths = kPaths;
  paths.sweep = "/opt/my builds/it's/sweep";
  auto script = render_sbatch_script("q", resolve_slurm_settings(load_text(""), {}), paths);
  EXPECT_TRUE(has_line(script, "sweep='/opt/my builds/it'\\''s/sweep'")) << script;
  EXPECT_EQ(shell_quote("a b"), "'a b'");
}

TEST(SlurmScript, BashAcceptsTheScript) {
  for (const char* text : {"", "[slurm]\narray = 3\ngpus_per_task = 1\nsbatch_args = [\"--exclusive\"]\n"}) {
    fs::path file = scratch() / "check.sbatch";
    std::ofstream(file) << render(text);
    auto r = sweep::testing::run_command({"bash", "-n", file.string()}, "bash_n");
    EXPECT_EQ(r.exit_code, 0) << r.log;
  }
}

TEST(SlurmTemplate, LinesRepeatPerItemAndVanishWhenEmpty) {
  std::string text = "a={{a}}\n#X {{list}} {{a}}\nnone={{empty}}\nend\n";
  auto out = render_template(text, {{"a", {"1"}}, {"list", {"p", "q"}}, {"empty", {}}});
  EXPECT_EQ(out, "a=1\n#X p 1\n#X q 1\nend\n");
  EXPECT_THROW(render_template("{{missing}}\n", {}), std::logic_error);
  EXPECT_THROW(render_template("{{x}} {{y}}\n", {{"x", {"1", "2"}}, {"y", {"1", "2", "3"}}}), std::logic_error);
}
