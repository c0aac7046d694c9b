// `sweep plan`: the jobs a sweep would run, with their states in an existing output directory,
// listed without writing anything; shipped sweeps plan, and bad data is exit 2 after the listing.
#include <gtest/gtest.h>

#include <fstream>

#include "test_paths.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

json plan_json(const std::vector<std::string>& args, const std::string& name, int want_exit = 0) {
  std::vector<std::string> command = {SWEEP_BINARY, "plan"};
  command.insert(command.end(), args.begin(), args.end());
  command.push_back("--json");
  auto r = run_command(command, name);
  EXPECT_EQ(r.exit_code, want_exit) << r.log;
  const auto start = r.log.find('{');
  return start == std::string::npos ? json() : json::parse(r.log.substr(start, r.log.rfind('}') - start + 1));
}

}  // namespace

TEST(Plan, ListsTheJobsAndTheirStatesWithoutWritingAnything) {
  const auto out = scratch() / "plan-quick";
  auto before = plan_json({quick_toml(), "--out", out.string()}, "plan-before");
  ASSERT_EQ(before["jobs"].size(), 3u);
  EXPECT_FALSE(fs::exists(out)) << "sweep plan writes nothing";
  for (const auto& job : before["jobs"]) {
    EXPECT_EQ(job["state"], "new");
    EXPECT_GT(job["memory_bytes"].get<double>(), 0);
    EXPECT_GT(job["estimated_seconds"].get<double>(), 0);
  }
  EXPECT_EQ(before["jobs"][0]["point"], "baseline");

  ASSERT_EQ(run_quick(0, "plan-quick").exit_code, 0);
  auto after = plan_json({quick_toml(), "--out", out.string()}, "plan-after");
  ASSERT_EQ(after["jobs"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(after["jobs"][i]["id"], before["jobs"][i]["id"]);
    EXPECT_EQ(after["jobs"][i]["state"], "done");
  }
  // A changed file is refused as a run would refuse it.
  plan_json({quick_toml(), "--out", out.string(), "--set", "sae.d_sae=32"}, "plan-changed", 2);
}

// Every shipped sweep plans (exit 0; a file sweep whose activation files are not here, exit 2).
// seed-baselines.toml ties each architecture's learning rate with grid.zip: exactly its 2 jobs,
// listed even though the activation files it names are not here (exit 2, saying so).
TEST(Plan, EveryShippedSweepPlansAndSeedBaselinesHasItsTwoJobs) {
  for (const auto& entry : fs::directory_iterator(fs::path(SWEEP_SOURCE_DIR) / "sweeps")) {
    if (entry.path().extension() != ".toml") continue;
    const auto name = entry.path().stem().string();
    // Sweeps over activation files name files a clone does not have (../shared/data).
    const bool needs_files = read_text(entry.path()).find("source = \"files\"") != std::string::npos;
    auto r = run_command({SWEEP_BINARY, "plan", entry.path().string(), "--out", (scratch() / ("shipped-" + name)).string()},
                         "plan-" + name);
    if (!needs_files) {
      EXPECT_EQ(r.exit_code, 0) << r.log;
    } else {
      EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 2) << r.log;
    }
    EXPECT_FALSE(fs::exists(scratch() / ("shipped-" + name))) << name;
  }
  auto baselines = plan_json({std::string(SWEEP_SOURCE_DIR) + "/sweeps/seed-baselines.toml"}, "plan-seed-baselines-json", 2);
  ASSERT_EQ(baselines["jobs"].size(), 2u);
  EXPECT_EQ(baselines["jobs"][0]["params"], json({{"sae.arch", "topk"}, {"train.lr", 1e-4}}));
  EXPECT_EQ(baselines["jobs"][1]["params"], json({{"sae.arch", "jumprelu"}, {"train.lr", 3e-4}}));
  EXPECT_NE(baselines["data_error"].get<std::string>().find("acts/*.safetensors"), std::string::npos);
}

// Explicit points: the report names their grid points by label, and a point added to the file
// runs alone on a re-run (the finished points are kept).
TEST(Plan, LabelledPointsNameTheReportsGridPointsAndAnAddedPointRunsAlone) {
  const auto out = scratch() / "points";
  const std::string base = std::string(SWEEP_SOURCE_DIR) + "/sweeps/quick.toml";
  auto toml = [&](bool third) {
    const auto file = scratch() / (third ? "points3.toml" : "points2.toml");
    std::ofstream(file) << read_text(base) << "[[grid.points]]\nlabel = \"narrow\"\n\"sae.d_sae\" = 32\n"
                        << "[[grid.points]]\nlabel = \"wide\"\n\"sae.d_sae\" = 96\n"
                        << (third ? "[[grid.points]]\nlabel = \"middle\"\n\"sae.d_sae\" = 48\n" : "");
    return file.string();
  };
  auto first = run_command({SWEEP_BINARY, toml(false), "--out", out.string()}, "points-1");
  ASSERT_EQ(first.exit_code, 0) << first.log;
  auto report = read_json(out / "report.json");
  ASSERT_EQ(report["jobs"].size(), 6u) << "2 points x (baseline + 2 thresholds)";
  std::vector<std::string> labels;
  for (const auto& point : report["points"]) labels.push_back(point["label"]);
  EXPECT_NE(std::find(labels.begin(), labels.end(), "narrow, absorption.ratio_threshold=2.0"), labels.end()) << json(labels);
  EXPECT_NE(std::find(labels.begin(), labels.end(), "baseline, wide"), labels.end()) << json(labels);

  auto second = run_command({SWEEP_BINARY, toml(true), "--out", out.string()}, "points-2");
  ASSERT_EQ(second.exit_code, 0) << second.log;
  EXPECT_NE(second.log.find("adding 3 new job(s)"), std::string::npos) << second.log;
  EXPECT_NE(second.log.find("resuming: 6 of 9 jobs already done"), std::string::npos) << second.log;
}
