// A sweep on activation files end to end: training and export from .npy/.safetensors shards,
// and a shard with a NaN row failing only the job that reads it (naming shard and row).
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "sharding/npy.h"
#include "sharding/safetensors.h"
#include "test_paths.h"
#include "tests/process_support.h"
#include "tests/saelens_format_check.h"

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

TEST(FileSweep, EvalTokensLargerThanTheFilesIsRefusedBeforeTraining) {
  auto dir = make_shards();
  auto r = run_quick(0, "too_few",
                     {"--set", "data.source=files", "--set", "data.paths=[\"" + (dir / "good" / "*").string() + "\"]",
                      "--set", "data.eval_tokens=5000"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("data.eval_tokens = 5000 but the activation files hold only 1200 rows"), std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "too_few"));
}
