// A sweep on activation files end to end: training and export from .npy/.safetensors shards,
// a shard with a NaN row failing only the job that reads it (naming shard and row), data sets too
// small to train on, activation files changed between runs, and a shard truncated mid-run.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>
#include <limits>

#include "sharding/file_source.h"
#include "sharding/fingerprint.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/saelens_format_check.h"
#include "tests/sweep_outputs.h"

namespace fs = std::filesystem;
using namespace sweep::testing;

namespace {

// Two clean shards (npy + safetensors) and one shard whose row 17 is NaN, 600 rows of d_in 16 each.
fs::path make_shards() {
  auto dir = scratch() / "acts";
  fs::create_directories(dir / "good");
  fs::create_directories(dir / "bad");
  torch::manual_seed(4);
  auto rows = [] { return torch::relu(torch::randn({600, 16})); };
  sweep::sharding::write_npy(dir / "good" / "a.npy", rows());
  sweep::sharding::write_safetensors(dir / "good" / "b.safetensors", {{"activations", rows().to(torch::kHalf)}});
  auto bad = rows();
  bad[17][3] = std::numeric_limits<float>::quiet_NaN();
  sweep::sharding::write_npy(dir / "bad" / "c.npy", bad);
  return dir;
}

}  // namespace

TEST(FileSweep, TrainsOnShardsAndFailsOnlyTheJobThatReadsANanRow) {
  auto dir = make_shards();
  auto toml = scratch() / "files.toml";
  std::ofstream(toml) << "name = \"files\"\n"
                         "[data]\nsource = \"files\"\neval_tokens = 200\n"
                         "[sae]\nd_sae = 32\n"
                         "[train]\nsteps = 30\nbatch_size = 100\nlog_every = 10\n"
                         "[absorption]\ndot_threshold = 0.3\n"
                         "[grid]\ninclude_baseline = false\n"
                         "\"data.paths\" = [[\"" << (dir / "good" / "*").string() << "\"], [\"" << (dir / "bad" / "*.npy").string()
                      << "\"]]\n";
  auto r = run_command({SWEEP_BINARY, toml.string(), "--out", (scratch() / "files_out").string()}, "files");
  ASSERT_EQ(r.exit_code, 3) << r.log;
  auto report = read_json(scratch() / "files_out" / "report.json");
  ASSERT_EQ(report["jobs"].size(), 2u);
  for (const auto& job : report["jobs"]) {
    bool bad = job["config"]["data.paths"][0].get<std::string>().find("bad") != std::string::npos;
    if (bad) {
      EXPECT_EQ(job["status"], "failed");
      std::string error = job["error"];
      EXPECT_NE(error.find("c.npy"), std::string::npos) << error;
      EXPECT_NE(error.find("row 17"), std::string::npos) << error;
    } else {
      EXPECT_EQ(job["status"], "done");
      EXPECT_EQ(job["config"]["data.source"], "files");
      EXPECT_GT(job["metrics"]["explained_variance"].get<double>(), -1.0);
      EXPECT_EQ(job["metrics"]["eval_tokens"], 200);
      EXPECT_FALSE(job["metrics"].contains("gt_mcc")) << "no ground truth for files";
      auto problems = saelens_problems(scratch() / "files_out" / "jobs" / job["id"].get<std::string>() / "sae");
      EXPECT_TRUE(problems.empty()) << problems.front();
    }
  }
}

// data.ground_truth: benchmark data made elsewhere is scored against its true features, here the
// embedded data exported with its ground truth; a ground truth for other rows is refused up front.
TEST(FileSweep, GroundTruthFromAFileGivesTheGtMetrics) {
  const fs::path data = scratch() / "exported.safetensors", other = scratch() / "other.safetensors";
  for (const auto& [file, tokens] : {std::pair<fs::path, std::string>{data, "5000"}, {other, "4000"}}) {
    auto exported = run_command({SWEEP_BINARY, "data", "export", quick_toml(), "--out", file.string(), "--tokens", tokens},
                                "gt_export_" + tokens);
    ASSERT_EQ(exported.exit_code, 0) << exported.log;
  }
  auto toml = scratch() / "gt_files.toml";
  auto write_toml = [&](const fs::path& truth) {
    std::ofstream(toml, std::ios::trunc) << "name = \"gt_files\"\n"
                                            "[data]\nsource = \"files\"\neval_tokens = 1000\npaths = [\"" << data.string()
                                         << "\"]\nground_truth = \"" << truth.string() << "\"\n"
                                            "[sae]\nd_sae = 64\n[train]\nsteps = 40\nbatch_size = 200\nlog_every = 10\n"
                                            "[grid]\n\"absorption.ratio_threshold\" = [5.0]\n";
  };
  write_toml(data);
  auto r = run_command({SWEEP_BINARY, toml.string(), "--out", (scratch() / "gt_files_out").string()}, "gt_files");
  ASSERT_EQ(r.exit_code, 0) << r.log;
  auto report = read_json(scratch() / "gt_files_out" / "report.json");
  ASSERT_EQ(report["jobs"].size(), 2u);
  for (const auto& job : report["jobs"]) {
    const auto& m = job["metrics"];
    for (const char* key : {"gt_mcc", "gt_mmcs", "gt_f1", "gt_pairs_matched"}) {
      ASSERT_TRUE(m.contains(key) && m[key].is_number()) << key << " in " << m.dump();
    }
    EXPECT_GT(m["gt_mcc"].get<double>(), 0.0);
    EXPECT_GT(m["gt_pairs_matched"].get<double>(), 0.0) << "the exported parents reach the coverage";
  }

  write_toml(other);
  auto refused = run_command({SWEEP_BINARY, toml.string(), "--out", (scratch() / "gt_other_out").string()}, "gt_other");
  EXPECT_EQ(refused.exit_code, 2) << refused.log;
  EXPECT_NE(refused.log.find("data.ground_truth = \"" + other.string() + "\": feature activations for 4000 rows, but the "
                             "activation files hold 5000 rows"),
            std::string::npos)
      << refused.log;
  EXPECT_FALSE(fs::exists(scratch() / "gt_other_out" / "jobs")) << "refused before any job";
}

TEST(FileSweep, EvalTokensLargerThanTheFilesIsRefusedBeforeTraining) {
  auto dir = make_shards();
  auto r = run_quick(0, "too_few",
                     {"--set", "data.source=files", "--set", "data.paths=[\"" + (dir / "good" / "*").string() + "\"]",
                      "--set", "data.eval_tokens=5000"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("data.eval_tokens = 5000 but the activation files hold only 1200 rows"), std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "too_few"));
}

TEST(FileSweep, FewerTrainingRowsThanABatchIsRefusedBeforeTraining) {
  auto dir = make_shards();
  auto r = run_quick(0, "one_row_left",
                     {"--set", "data.source=files", "--set", "data.paths=[\"" + (dir / "good" / "*").string() + "\"]",
                      "--set", "data.eval_tokens=1100", "--set", "train.batch_size=256"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("only 100 rows are left for training, fewer than one batch (train.batch_size = 256)"), std::string::npos)
      << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "one_row_left"));
}

namespace {

std::vector<std::string> file_sweep_args(const fs::path& shards, const std::string& steps) {
  return {"--set", "data.source=files", "--set", "data.paths=[\"" + (shards / "*").string() + "\"]", "--set", "data.eval_tokens=200",
          "--set", "grid.include_baseline=false", "--set", "grid.absorption.ratio_threshold=[2.0]", "--set", "train.steps=" + steps,
          "--set", "run.heartbeat_seconds=0.05"};
}

fs::path own_shards(const std::string& name) {
  auto dir = scratch() / name;
  fs::create_directories(dir);
  torch::manual_seed(7);
  sweep::sharding::write_npy(dir / "a.npy", torch::relu(torch::randn({1200, 16})));
  return dir;
}

}  // namespace

TEST(FileSweep, AResumeOnChangedActivationFilesIsRefusedNamingTheShard) {
  auto shards = own_shards("changing");
  auto args = file_sweep_args(shards, "50");
  ASSERT_EQ(run_quick(0, "changing_out", args).exit_code, 0);

  fs::last_write_time(shards / "a.npy", fs::last_write_time(shards / "a.npy") + std::chrono::seconds(5));  // touched only
  auto touched = run_quick(0, "changing_out", args);
  EXPECT_EQ(touched.exit_code, 0) << touched.log;
  EXPECT_NE(touched.log.find("same size and sampled contents"), std::string::npos) << touched.log;

  torch::manual_seed(8);  // the same shape, other values
  sweep::sharding::write_npy(shards / "a.npy", torch::relu(torch::randn({1200, 16})));
  auto changed = run_quick(0, "changing_out", args);
  EXPECT_EQ(changed.exit_code, 2) << changed.log;
  EXPECT_NE(changed.log.find((shards / "a.npy").string() + ": same size, different contents"), std::string::npos) << changed.log;
  EXPECT_NE(changed.log.find("--fresh"), std::string::npos) << changed.log;

  auto fresh = run_quick(0, "changing_out", [&] { auto a = args; a.push_back("--fresh"); return a; }());
  EXPECT_EQ(fresh.exit_code, 0) << fresh.log;
}

// The shards are the rows in data.paths order (each glob's matches sorted), as the README says, so
// that a ground truth made for that order lines up. A resume refuses a ground-truth file replaced
// by another for the same rows, naming it.
TEST(FileSweep, ShardsAreReadInDataPathsOrderAndEveryDataFileIsFingerprinted) {
  auto dir = scratch() / "order";
  fs::create_directories(dir);
  for (const char* name : {"a.npy", "b.npy", "c.npy"}) sweep::sharding::write_npy(dir / name, torch::zeros({4, 2}));
  const auto order = sweep::sharding::expand_globs({(dir / "c.npy").string(), (dir / "*.npy").string()});
  ASSERT_EQ(order.size(), 3u) << "c.npy, matched twice, is read once";
  EXPECT_EQ(order[0], dir / "c.npy");
  EXPECT_EQ(order[1], dir / "a.npy");
  EXPECT_EQ(order[2], dir / "b.npy");
  // The same files in another order are other data.
  const auto swapped = sweep::sharding::compare_fingerprints(
      sweep::sharding::fingerprint_files({(dir / "a.npy").string(), (dir / "b.npy").string()}),
      sweep::sharding::fingerprint_files({(dir / "b.npy").string(), (dir / "a.npy").string()}));
  ASSERT_EQ(swapped.changed.size(), 1u);
  EXPECT_NE(swapped.changed[0].find("read in another order"), std::string::npos) << swapped.changed[0];

  // Two halves of the exported rows, given in the order of the ground truth (the second name sorts first).
  const fs::path data = dir / "exported.safetensors", truth = dir / "truth.safetensors";
  for (const auto& [file, seed] : {std::pair<fs::path, std::string>{data, "0"}, {truth, "0"}}) {
    auto exported = run_command({SWEEP_BINARY, "data", "export", quick_toml(), "--out", file.string(), "--tokens", "5000",
                                 "--set", "data.seed=" + seed},
                                "order_export_" + file.stem().string());
    ASSERT_EQ(exported.exit_code, 0) << exported.log;
  }
  auto rows = sweep::sharding::read_safetensors(data).at("activations");
  sweep::sharding::write_npy(dir / "z_first.npy", rows.narrow(0, 0, 2500).contiguous());
  sweep::sharding::write_npy(dir / "y_second.npy", rows.narrow(0, 2500, 2500).contiguous());
  auto toml = dir / "order.toml";
  std::ofstream(toml) << "name = \"order\"\n[data]\nsource = \"files\"\neval_tokens = 1000\npaths = [\""
                      << (dir / "z_first.npy").string() << "\", \"" << (dir / "y_second.npy").string()
                      << "\"]\nground_truth = \"" << truth.string() << "\"\n"
                         "[sae]\nd_sae = 64\n[train]\nsteps = 40\nbatch_size = 200\nlog_every = 10\n"
                         "[grid]\ninclude_baseline = false\n\"absorption.ratio_threshold\" = [5.0]\n";
  const auto out = dir / "out";
  auto first = run_command({SWEEP_BINARY, toml.string(), "--out", out.string()}, "order_first");
  ASSERT_EQ(first.exit_code, 0) << first.log;
  EXPECT_TRUE(read_json(out / "report.json")["jobs"][0]["metrics"].contains("gt_mcc"));

  // The ground truth replaced by another for the same rows (other features): refused on resume.
  auto other = run_command({SWEEP_BINARY, "data", "export", quick_toml(), "--out", truth.string(), "--tokens", "5000",
                            "--set", "data.seed=9"},
                           "order_export_other");
  ASSERT_EQ(other.exit_code, 0) << other.log;
  auto resumed = run_command({SWEEP_BINARY, toml.string(), "--out", out.string()}, "order_other_truth");
  EXPECT_EQ(resumed.exit_code, 2) << resumed.log;
  EXPECT_NE(resumed.log.find("the data files (activations, ground truth, labels) changed since this sweep was planned"),
            std::string::npos)
      << resumed.log;
  EXPECT_NE(resumed.log.find(truth.string() + ": "), std::string::npos) << "names the file\n" << resumed.log;
}

TEST(FileSweep, AShardTruncatedWhileTrainingFailsTheJobWithAMessage) {
  auto shards = own_shards("truncated");
  auto out = scratch() / "truncated_out";
  std::vector<std::string> command = {"timeout", "300", SWEEP_BINARY, quick_toml(), "--out", out.string()};
  for (const auto& arg : file_sweep_args(shards, "200000")) command.push_back(arg);
  BackgroundRun run(command, "truncated");
  ASSERT_TRUE(run.wait_until(
      [&] { return fs::exists(out / "plan.json") && job_state_of(out, planned_job_ids(out).at(0)).value("step", 0) > 0; },
      120))
      << run.log();
  fs::resize_file(shards / "a.npy", 4096);  // the header and a few rows: later rows are past the end
  EXPECT_EQ(run.wait(120), 3) << run.log();
  EXPECT_NE(run.log().find("a.npy: reading row"), std::string::npos) << run.log();
  EXPECT_NE(run.log().find("truncated or replaced while the sweep was reading it"), std::string::npos) << run.log();
  auto report = read_json(out / "report.json");
  EXPECT_EQ(report["jobs"][0]["status"], "failed");
}
