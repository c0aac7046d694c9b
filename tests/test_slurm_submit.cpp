// The `sweep submit` command without a cluster: --dry-run, a stand-in sbatch that accepts or
// refuses the job, sbatch missing, and invalid input; each checked by exit code, output and files.
#include <gtest/gtest.h>

#include <fstream>

#include "test_paths.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using namespace sweep::testing;

namespace {


// A directory holding an executable `sbatch` that records its arguments and runs `body`.
fs::path fake_sbatch(const std::string& name, const std::string& body) {
  fs::path dir = scratch() / ("bin_" + name);
  fs::create_directories(dir);
  std::ofstream(dir / "sbatch") << "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n" << body << "\n";
  fs::permissions(dir / "sbatch", fs::perms::owner_all);
  return dir;
}

// `sweep submit quick.toml --out <scratch>/name extra...` with PATH = path_dir only, plus the system's.
RunResult submit(const std::string& name, const fs::path& path_dir, const std::vector<std::string>& extra) {
  std::vector<std::string> command = {"env", "PATH=" + path_dir.string() + ":/usr/bin:/bin", SWEEP_BINARY, "submit",
                                      quick_toml(), "--out", (scratch() / name).string()};
  command.insert(command.end(), extra.begin(), extra.end());
  return run_command(command, name);
}

}  // namespace

TEST(SlurmSubmit, DryRunPrintsTheScriptAndWritesNothing) {
  auto r = submit("dry", fake_sbatch("dry", "exit 1"), {"--dry-run", "--time", "00:20:00", "--array", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.log.find("#SBATCH --time=00:20:00\n"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("#SBATCH --array=0-1\n"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("#SBATCH --output=" + (scratch() / "dry" / "slurm" / "sweep-%A_%a.out").string()),
            std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "dry"));
  EXPECT_FALSE(fs::exists(scratch() / "bin_dry" / "args")) << "--dry-run must not call sbatch";
}

TEST(SlurmSubmit, SubmitsTheWrittenScriptAndPrintsTheJobId) {
  auto bin = fake_sbatch("ok", "echo 'sbatch: warning: something harmless' >&2; echo '4242;cluster'");
  auto r = submit("ok", bin, {"--sbatch-arg=--exclusive", "--ntasks-per-node", "2", "--set", "sae.d_sae=32"});
  ASSERT_EQ(r.exit_code, 0) << r.log;
  EXPECT_NE(r.log.find("submitted Slurm job 4242: sweep quick, 3 jobs, 1 node(s) x 2 rank(s)"), std::string::npos)
      << r.log;
  const fs::path slurm = scratch() / "ok" / "slurm";
  EXPECT_NE(r.log.find((slurm / "sweep-4242.out").string()), std::string::npos) << r.log;
  EXPECT_EQ(read_text(bin / "args"), "--parsable " + (slurm / "sweep.sbatch").string() + "\n");
  auto script = read_text(slurm / "sweep.sbatch");
  EXPECT_NE(script.find("#SBATCH --exclusive\n"), std::string::npos) << script;
  EXPECT_NE(script.find("overrides+=(--set 'sae.d_sae=32')\n"), std::string::npos) << "--set reaches every run\n"
                                                                                      << script;
  EXPECT_NE(script.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos) << script;
  EXPECT_NE(script.find("sweep_file='" + (slurm / "quick.toml").string() + "'"), std::string::npos) << script;
  EXPECT_EQ(read_text(slurm / "quick.toml"), read_text(quick_toml()));
}

TEST(SlurmSubmit, SbatchRefusingIsReportedWithItsMessage) {
  auto r = submit("refused", fake_sbatch("refused", "echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1"),
                  {"--partition", "nope"});
  EXPECT_EQ(r.exit_code, 4) << r.log;
  EXPECT_NE(r.log.find("sbatch refused"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("invalid partition specified: nope"), std::string::npos) << r.log;
}

TEST(SlurmSubmit, MissingSbatchIsReported) {
  fs::path empty = scratch() / "no_bin";
  fs::create_directories(empty);
  std::vector<std::string> command = {"env", "PATH=" + empty.string(), SWEEP_BINARY, "submit", quick_toml(),
                                      "--out", (scratch() / "missing").string()};
  auto r = run_command(command, "missing");
  EXPECT_EQ(r.exit_code, 4) << r.log;
  EXPECT_NE(r.log.find("sbatch not found on PATH"), std::string::npos) << r.log;
}

TEST(SlurmSubmit, InvalidInputExitsWithTwoBeforeAnything) {
  auto bin = fake_sbatch("bad", "echo 1");
  auto path = "PATH=" + bin.string() + ":/usr/bin:/bin";
  auto r = submit("bad_time", bin, {"--time", "1h"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("--time 1h: slurm.time = \"1h\""), std::string::npos) << r.log;

  fs::path bad = scratch() / "bad.toml";
  std::ofstream(bad) << "[train]\nranks_per_job = 2\n[slurm]\nntasks_per_node = 3\n";
  r = run_command({"env", path, SWEEP_BINARY, "submit", bad.string(), "--out", (scratch() / "bad_ranks").string()},
                  "bad_ranks");
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("bad.toml:4: slurm.ntasks_per_node = 3"), std::string::npos) << r.log;

  r = run_command({"env", path, SWEEP_BINARY, "submit", quick_toml(), "--out", (scratch() / "with space").string()},
                  "bad_out");
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("cannot hold white space"), std::string::npos) << r.log;

  r = submit("bad_set", bin, {"--set", "train.stepz=10"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("train.stepz"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("train.steps"), std::string::npos) << "did-you-mean\n" << r.log;

  for (const char* out : {"bad_time", "bad_ranks", "with space", "bad_set"}) EXPECT_FALSE(fs::exists(scratch() / out)) << out;
  EXPECT_FALSE(fs::exists(bin / "args")) << "sbatch must not run on invalid input";
}
