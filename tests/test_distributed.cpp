// Whole sweeps under mpirun: results independent of ranks_per_job (1, 2, 4 ranks), groups that
// share the grid run every job exactly once, failures and bad world sizes end cleanly.
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "sharding/safetensors.h"
#include "test_paths.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

// Largest |a - b| over the largest |a|, over every tensor of two SAE weight files.
double max_relative_difference(const fs::path& a, const fs::path& b) {
  auto ta = sweep::sharding::read_safetensors(a), tb = sweep::sharding::read_safetensors(b);
  double worst = 0;
  for (const auto& [name, t] : ta) {
    double scale = std::max(1e-12, t.abs().max().item<double>());
    worst = std::max(worst, (t - tb.at(name)).abs().max().item<double>() / scale);
  }
  return worst;
}

const std::vector<std::string> kOneJob = {"--set", "grid.include_baseline=false", "--set",
                                          "grid.absorption.ratio_threshold=[2.0]"};
// kOneJob with labels: the probe-based absorption metric's sums cross the group too.
std::vector<std::string> labelled(std::vector<std::string> args) {
  args.insert(args.end(), {"--set", "data.labels=parents"});
  return args;
}

}  // namespace

TEST(Distributed, ResultsDoNotDependOnRanksPerJob) {
  auto single = run_quick(0, "rpj1", labelled(kOneJob));
  ASSERT_EQ(single.exit_code, 0) << single.log;
  auto report1 = read_json(scratch() / "rpj1" / "report.json");
  ASSERT_EQ(report1["jobs"].size(), 1u);
  std::string id = report1["jobs"][0]["id"];
  ASSERT_GT(report1["jobs"][0]["metrics"]["absorption_active_fraction"].get<double>(), 0.0) << "the penalty must fire";
  for (int ranks : {2, 4}) {
    std::string name = "rpj" + std::to_string(ranks);
    std::vector<std::string> extra = labelled(kOneJob);
    extra.insert(extra.end(), {"--set", "train.ranks_per_job=" + std::to_string(ranks)});
    auto r = run_quick(ranks, name, extra);
    ASSERT_EQ(r.exit_code, 0) << r.log;
    auto report = read_json(scratch() / name / "report.json");
    ASSERT_EQ(report["jobs"][0]["id"], id) << "ranks_per_job must not change the job id";
    EXPECT_EQ(report["jobs"][0]["train"]["ranks"], ranks);
    double diff = max_relative_difference(scratch() / "rpj1" / "jobs" / id / "sae" / "sae_weights.safetensors",
                                          scratch() / name / "jobs" / id / "sae" / "sae_weights.safetensors");
    // Adam moves a weight whose gradient is near 0 by about lr whatever its sign, so rounding-level
    // differences in the summed gradients reach a few 1e-5 of a weight after 200 steps.
    EXPECT_LT(diff, 5e-5) << ranks << " ranks";
    const auto& m1 = report1["jobs"][0]["metrics"];
    const auto& m = report["jobs"][0]["metrics"];
    for (const char* key : {"explained_variance", "mse", "l0", "gt_mcc", "absorption_loss_mean"}) {
      EXPECT_NEAR(m[key].get<double>(), m1[key].get<double>(), 1e-5 * (1 + std::abs(m1[key].get<double>()))) << key;
    }
    EXPECT_EQ(m["absorption_pairs_mean"], m1["absorption_pairs_mean"]);
    // The probes are the data's; the k-sparse probes and scores see the rounding-level differences.
    EXPECT_NEAR(m["probe_f1"].get<double>(), m1["probe_f1"].get<double>(), 1e-6);
    EXPECT_EQ(m["probe_classes"], m1["probe_classes"]);
    for (const char* key : {"probe_absorption_fraction", "probe_full_absorption"})
      EXPECT_NEAR(m[key].get<double>(), m1[key].get<double>(), 0.03) << key;
  }
}

TEST(Distributed, TwoGroupsShareTheGridAndRunEveryJobOnce) {
  auto single = run_quick(0, "grid1", {});
  ASSERT_EQ(single.exit_code, 0) << single.log;
  auto r = run_quick(4, "grid4", {"--set", "train.ranks_per_job=2"});
  ASSERT_EQ(r.exit_code, 0) << r.log;
  auto plan = read_json(scratch() / "grid4" / "plan.json");
  auto report = read_json(scratch() / "grid4" / "report.json");
  auto report1 = read_json(scratch() / "grid1" / "report.json");
  ASSERT_EQ(report["jobs"].size(), plan["jobs"].size());
  // Each job is started by exactly one group leader ("job i/N <id>" is logged once per start).
  std::map<std::string, int> starts;
  std::regex started(R"(job \d+/\d+ ([0-9a-f]{12}) )");
  for (std::sregex_iterator it(r.log.begin(), r.log.end(), started), end; it != end; ++it) ++starts[(*it)[1]];
  for (size_t i = 0; i < report["jobs"].size(); ++i) {
    const auto& job = report["jobs"][i];
    EXPECT_EQ(job["status"], "done");
    EXPECT_EQ(job["train"]["ranks"], 2);
    EXPECT_EQ(starts[job["id"]], 1) << job["id"];
    EXPECT_NEAR(job["metrics"]["explained_variance"].get<double>(),
                report1["jobs"][i]["metrics"]["explained_variance"].get<double>(), 1e-5);
  }
  // The report is written once, by world rank 0.
  size_t reports = 0;
  for (size_t pos = r.log.find("report: "); pos != std::string::npos; pos = r.log.find("report: ", pos + 1)) ++reports;
  EXPECT_EQ(reports, 1u);
}

TEST(Distributed, AFailingJobEndsTogetherOnEveryRankOfItsGroup) {
  // The second grid point's activations overflow to inf at once: that job fails, the other finishes.
  auto r = run_quick(2, "fail2", {"--set", "train.ranks_per_job=2", "--set", "grid.include_baseline=false", "--set",
                                  "grid.absorption.ratio_threshold=[2.0]", "--set", "grid.data.magnitude_mean=[1.0, 1e30]"});
  ASSERT_EQ(r.exit_code, 3) << r.log;  // 124 would mean the time limit hit a hang
  auto report = read_json(scratch() / "fail2" / "report.json");
  EXPECT_EQ(report["counts"]["done"], 1);
  EXPECT_EQ(report["counts"]["failed"], 1);
  for (const auto& job : report["jobs"]) {
    if (job["status"] == "failed") {
      EXPECT_NE(job["error"].get<std::string>().find("whose squares overflow float32"), std::string::npos) << job["error"];
    }
  }
}

TEST(Distributed, WorldSizeNotDivisibleByRanksPerJobIsRefused) {
  auto r = run_quick(3, "bad_world", {"--set", "train.ranks_per_job=2"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("train.ranks_per_job = 2 does not divide the 3 ranks started"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("use one of: 1, 3"), std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "bad_world"));
}

TEST(Distributed, TrainDeviceCudaWithoutAGpuIsRefusedBeforeAnyJob) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU";
  auto r = run_quick(2, "no_gpu", {"--set", "train.device=cuda"});
  EXPECT_EQ(r.exit_code, 2) << r.log;
  EXPECT_NE(r.log.find("--set train.device=cuda: train.device = \"cuda\": "), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("use \"auto\" or \"cpu\""), std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch() / "no_gpu"));
}

TEST(Distributed, BadDataIsRefusedOnEveryRankWithoutAHang) {
  auto r = run_quick(2, "bad_data", {"--set", "data.source=files", "--set", "data.paths=[\"no/such/*.npy\"]"});
  EXPECT_EQ(r.exit_code, 2) << r.log;  // 124: the time limit hit a rank left waiting
  EXPECT_NE(r.log.find("glob pattern matches no file"), std::string::npos) << r.log;
}

// The sparse step data-parallel: topk and jumprelu on 2 ranks, sparse, end where 1 rank's dense
// step does. 40 steps: jumprelu's output jumps at its threshold, so over a long run one rounding-
// level difference can switch one latent of one row and the runs part by more than rounding.
// relu with planned code sizes: the ranks agree on the most entries of a rank; the first step (a
// size of 1) is computed again on both.
TEST(Distributed, TheSparseStepOnTwoRanksMatchesTheDenseStepOnOne) {
  for (auto [arch, widths] : {std::pair<std::string, std::string>{"topk", "auto"}, {"jumprelu", "auto"}, {"relu", "planned"}}) {
    std::vector<std::string> args = kOneJob;
    args.insert(args.end(), {"--set", "sae.arch=\"" + arch + "\"", "--set", "sae.k=4", "--set", "train.steps=40"});
    auto dense_args = args, sparse_args = args;
    dense_args.insert(dense_args.end(), {"--set", "train.step=\"dense\""});
    sparse_args.insert(sparse_args.end(), {"--set", "train.step=\"sparse\"", "--set", "train.ranks_per_job=2", "--set",
                                           "train.code_width=\"" + widths + "\""});
    const std::string dense_dir = "step-dense-" + arch, sparse_dir = "step-sparse-" + arch;
    auto dense = run_quick(0, dense_dir, dense_args);
    ASSERT_EQ(dense.exit_code, 0) << dense.log;
    auto sparse = run_quick(2, sparse_dir, sparse_args);
    ASSERT_EQ(sparse.exit_code, 0) << sparse.log;
    auto jobs_of = [](const std::string& name) { return read_json(scratch() / name / "report.json")["jobs"]; };
    std::string dense_id = jobs_of(dense_dir)[0]["id"], sparse_id = jobs_of(sparse_dir)[0]["id"];
    EXPECT_NE(dense_id, sparse_id) << "train.step is part of a job's configuration";
    double diff = max_relative_difference(scratch() / dense_dir / "jobs" / dense_id / "sae" / "sae_weights.safetensors",
                                          scratch() / sparse_dir / "jobs" / sparse_id / "sae" / "sae_weights.safetensors");
    EXPECT_LT(diff, 1e-4) << arch;
    if (widths == "planned") {
      auto result = read_json(scratch() / sparse_dir / "jobs" / sparse_id / "result.json");
      EXPECT_GE(result["train"]["steps_computed_again"].get<int64_t>(), 1) << "the first step's code of width 1 was cut";
    }
  }
}
