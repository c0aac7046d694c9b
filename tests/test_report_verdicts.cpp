// The report's verdicts on crafted sweep outputs, through `sweep report`: a job equal to its
// baseline, a penalty that never fired, the best job per objective, failed / preempted / missing
// jobs, tolerances from seed replicas; checked in report.json and report.md. Also the error for
// a directory that is not a sweep output.
#include <gtest/gtest.h>

#include <regex>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/report.h"
#include "test_paths.h"
#include "tests/crafted_sweep.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

RunResult sweep_report(const fs::path& out, const std::string& log_name) {
  return run_command({SWEEP_BINARY, "report", out.string()}, log_name);
}

std::set<std::string> ids(const json& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) out.insert(e.is_string() ? e.get<std::string>() : e["id"].get<std::string>());
  return out;
}

const json& find_by(const json& list, const std::string& key, const std::string& value) {
  for (const auto& e : list) {
    if (e.value(key, "") == value) return e;
  }
  static const json none;
  ADD_FAILURE() << "no entry with " << key << " = " << value << " in " << list.dump();
  return none;
}

json ratio(double r) { return {{"absorption.ratio_threshold", r}}; }

// One baseline and penalised jobs around it, each crafted to meet one verdict.
class CraftedVerdicts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    out_ = scratch() / "crafted";
    write_crafted_sweep(
        out_, "crafted",
        {done_job("base", {{"absorption.enabled", false}}, crafted_metrics(0.900, 10.0, 0.800, 0.200, 0.0)),
         // Within the fixed tolerances of the baseline on every metric, though the penalty fired.
         done_job("equal", ratio(5.0), crafted_metrics(0.9004, 10.05, 0.802, 0.203, 0.4)),
         // The penalty never fired: the same metrics as the baseline.
         done_job("never", ratio(20.0), crafted_metrics(0.900, 10.0, 0.800, 0.200, 0.0)),
         // Less absorption and better recovery at a small cost in explained variance.
         done_job("better", ratio(2.0), crafted_metrics(0.895, 9.6, 0.850, 0.050, 0.9)),
         // Least absorption of all, but explained variance 0.03 below the baseline's.
         done_job("worse", ratio(1.5), crafted_metrics(0.870, 12.0, 0.700, 0.010, 1.0)),
         unfinished_job("failed", ratio(1.0), "failed", "loss diverged at step 12 (loss = inf)", 2, 1),
         unfinished_job("preempted", ratio(3.0), "preempted", "preempted by the scheduler at step 150", 3, 6),
         unfinished_job("missing", ratio(4.0), "missing", "", 0, 0)});
    run_ = sweep_report(out_, "crafted_report");
  }

  void SetUp() override {
    ASSERT_EQ(run_.exit_code, 0) << run_.log;
    report_ = read_json(out_ / "report.json");
    md_ = read_text(out_ / "report.md");
  }

  const json& job(const std::string& id) const { return find_by(report_["jobs"], "id", id); }

  static inline fs::path out_;
  static inline RunResult run_;
  json report_;
  std::string md_;
};

TEST_F(CraftedVerdicts, CountsEveryStatusAndAttempts) {
  EXPECT_EQ(report_["counts"]["total"], 8);
  EXPECT_EQ(report_["counts"]["done"], 5);
  EXPECT_EQ(report_["counts"]["failed"], 1);
  EXPECT_EQ(report_["counts"]["preempted"], 1);
  EXPECT_EQ(report_["counts"]["other"], 1);
  EXPECT_EQ(job("failed")["attempts"], 2);
  EXPECT_EQ(job("preempted")["attempts"], 3);
  EXPECT_EQ(job("better")["attempts"], 1) << "no \"attempts\" in result.json means one";
  EXPECT_EQ(report_["summary"]["devices"], json({"cpu"}));
  EXPECT_EQ(report_["summary"]["ranks_per_job"], json({1}));
  EXPECT_NEAR(report_["summary"]["train_seconds"].get<double>(), 2.5 * 5 + (0 + 1 + 2 + 3 + 4), 1e-9);
  EXPECT_NE(md_.find("preempted: **1**"), std::string::npos) << md_;
}

TEST_F(CraftedVerdicts, PenaltyThatNeverFiredIsAWarning) {
  EXPECT_EQ(ids(report_["absorption_never_fired"]), std::set<std::string>{"never"});
  EXPECT_EQ(ids(report_["verdicts"]["absorption_never_fired"]), std::set<std::string>{"never"});
  EXPECT_NE(md_.find("> **WARNING: The absorption penalty NEVER FIRED in job never"), std::string::npos) << md_;
  EXPECT_EQ(md_.find("NEVER FIRED in job equal"), std::string::npos) << md_;
}

TEST_F(CraftedVerdicts, JobsEqualToTheBaselineWithinFixedTolerances) {
  const json& eq = report_["verdicts"]["equal_to_baseline"];
  EXPECT_EQ(ids(eq["jobs"]), (std::set<std::string>{"equal", "never"}));
  EXPECT_EQ(eq["compared"], 4) << "equal, never, better and worse have a finished baseline";
  const json& e = find_by(eq["jobs"], "id", "equal");
  EXPECT_EQ(e["baseline_id"], "base");
  EXPECT_EQ(e["tolerance"]["from"], "fixed");
  EXPECT_NEAR(e["tolerance"]["metrics"]["explained_variance"].get<double>(), 0.001, 1e-12);
  EXPECT_NEAR(e["tolerance"]["metrics"]["l0"].get<double>(), 0.1, 1e-12) << "1% of the baseline's L0";
  EXPECT_NEAR(e["differences"]["explained_variance"].get<double>(), 0.0004, 1e-9);
  for (const char* metric : {"explained_variance", "l0", "gt_mcc", "gt_absorption"}) {
    EXPECT_TRUE(e["differences"].contains(metric)) << metric;
  }
  EXPECT_NE(md_.find("Equal to its baseline within noise: job equal"), std::string::npos) << md_;
  EXPECT_NE(md_.find("Equal to its baseline within noise: job never"), std::string::npos) << md_;
  EXPECT_EQ(md_.find("Equal to its baseline within noise: job better"), std::string::npos) << md_;
  EXPECT_NE(md_.find("explained_variance 0.001, gt_absorption 0.005, gt_mcc 0.005, l0 1% of the baseline's"),
            std::string::npos)
      << "the fixed tolerances are stated\n"
      << md_;
}

TEST_F(CraftedVerdicts, BestJobPerObjectiveKeepsTheBaselineConstraint) {
  const json& best = report_["verdicts"]["best"];
  // "worse" has the least absorption but loses 0.03 of explained variance: not a candidate.
  EXPECT_EQ(find_by(best, "objective", "lowest_gt_absorption")["id"], "better");
  EXPECT_EQ(find_by(best, "objective", "lowest_gt_absorption")["baseline_value"], 0.2);
  EXPECT_EQ(find_by(best, "objective", "best_gt_mcc")["id"], "better");
  EXPECT_EQ(find_by(best, "objective", "lowest_l0")["id"], "better");
  // L0 within 10% of 10: base, equal, never, better; "equal" explains the most variance.
  EXPECT_EQ(find_by(best, "objective", "best_explained_variance_at_baseline_l0")["id"], "equal");
  EXPECT_EQ(find_by(best, "objective", "best_explained_variance_at_baseline_l0")["candidates"], 4);
  EXPECT_NE(md_.find("Lowest gt_absorption with explained variance at most 0.01 below its baseline's: job better"),
            std::string::npos)
      << md_;
}

TEST_F(CraftedVerdicts, UnfinishedJobsAreListedWithTheirReason) {
  const json& nf = report_["verdicts"]["not_finished"];
  EXPECT_EQ(ids(nf), (std::set<std::string>{"failed", "preempted", "missing"}));
  EXPECT_EQ(find_by(nf, "id", "failed")["reason"], "loss diverged at step 12 (loss = inf)");
  EXPECT_EQ(find_by(nf, "id", "failed")["attempts"], 2);
  EXPECT_NE(find_by(nf, "id", "missing")["reason"].get<std::string>().find("no result.json"), std::string::npos);
  const auto failed_section = md_.find("## Failed jobs");
  ASSERT_NE(failed_section, std::string::npos) << md_;
  EXPECT_NE(md_.find("- failed {\"absorption.ratio_threshold\":1.0}: failed after 2 attempts: loss diverged at step 12",
                     failed_section),
            std::string::npos)
      << md_;
  EXPECT_NE(md_.find("- preempted {\"absorption.ratio_threshold\":3.0}: preempted after 3 attempts", failed_section),
            std::string::npos)
      << md_;
  EXPECT_LT(md_.find("## Verdicts"), md_.find("## Jobs")) << "verdicts come before the table";
}

TEST_F(CraftedVerdicts, DifferencesParetoFrontAndCurvesBehindThePlots) {
  EXPECT_NEAR(job("better")["delta"]["explained_variance"].get<double>(), -0.005, 1e-9);
  EXPECT_NEAR(job("better")["delta"]["gt_absorption"].get<double>(), -0.15, 1e-9);
  std::set<std::string> front;
  for (const auto& j : report_["jobs"]) {
    if (j.value("pareto", false)) front.insert(j["id"]);
  }
  // "worse" (L0 12, EV 0.87) is beaten by the baseline on both; the others trade L0 for EV.
  EXPECT_EQ(front, (std::set<std::string>{"base", "equal", "never", "better"}));
  EXPECT_EQ(job("better")["curve"]["step"].size(), 8u);
  EXPECT_EQ(job("better")["curve"]["step"][7], 200);
  EXPECT_EQ(job("failed")["curve"]["loss"].size(), 1u) << "a failed job's partial curve is kept";
  EXPECT_TRUE(job("missing")["curve"].empty());
}

// Seed replicas of the baseline: their spread is the tolerance, wider here than the fixed one.
TEST(SeedReplicaVerdicts, ToleranceIsTheSpreadOfTheBaselinesReplicas) {
  const fs::path out = scratch() / "replicas";
  auto params = [](int seed, bool penalised) {
    json p = {{"seed", seed}};
    if (penalised)
      p["absorption.ratio_threshold"] = 5.0;
    else
      p["absorption.enabled"] = false;
    return p;
  };
  write_crafted_sweep(out, "replicas",
                      {done_job("b1", params(1, false), crafted_metrics(0.90, 10.0, 0.80, 0.20, 0.0)),
                       done_job("b2", params(2, false), crafted_metrics(0.92, 11.0, 0.83, 0.18, 0.0)),
                       done_job("j1", params(1, true), crafted_metrics(0.915, 10.5, 0.82, 0.19, 0.5)),
                       done_job("j2", params(2, true), crafted_metrics(0.95, 11.0, 0.83, 0.18, 0.5))});
  auto run = sweep_report(out, "replicas_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const json report = read_json(out / "report.json");
  const json& eq = report["verdicts"]["equal_to_baseline"];
  ASSERT_EQ(ids(eq["jobs"]), std::set<std::string>{"j1"}) << eq.dump(2);
  const json& tol = eq["jobs"][0]["tolerance"];
  EXPECT_EQ(tol["from"], "seed replicas");
  EXPECT_EQ(ids(tol["replicas"]), (std::set<std::string>{"b1", "b2"}));
  EXPECT_NEAR(tol["metrics"]["explained_variance"].get<double>(), 0.02, 1e-9);
  EXPECT_NEAR(tol["metrics"]["l0"].get<double>(), 1.0, 1e-9);
  const std::string md = read_text(out / "report.md");
  EXPECT_NE(md.find("the spread of 2 seed replicas"), std::string::npos) << md;
}

TEST(SweepReportCommand, RefusesADirectoryThatIsNotASweepOutput) {
  const fs::path dir = scratch() / "not_a_sweep";
  fs::create_directories(dir);
  auto run = sweep_report(dir, "not_a_sweep");
  EXPECT_EQ(run.exit_code, 2) << run.log;
  EXPECT_NE(run.log.find(dir.string() + ": not a sweep output directory"), std::string::npos) << run.log;
  EXPECT_FALSE(fs::exists(dir / "report.json"));

  auto missing = sweep_report(scratch() / "nowhere", "nowhere");
  EXPECT_EQ(missing.exit_code, 2) << missing.log;
  EXPECT_NE(missing.log.find((scratch() / "nowhere").string()), std::string::npos) << missing.log;
}

// Results of earlier versions named the penalty "absorb" in their metrics and curves: the report
// reads them under today's names, so a penalty that fired is never reported as silent.
TEST(SweepReportCommand, ReadsResultsWithThePenaltysEarlierNames) {
  const fs::path out = scratch() / "legacy_names";
  write_crafted_sweep(out, "legacy",
                      {done_job("base", {{"absorption.enabled", false}}, crafted_metrics(0.9, 10.0, 0.8, 0.2, 0.0)),
                       done_job("pen", {{"absorption.ratio_threshold", 5.0}}, crafted_metrics(0.9, 10.0, 0.8, 0.1, 0.5))});
  const fs::path dir = out / "jobs" / "pen";
  std::string result = read_text(dir / "result.json"), curve = read_text(dir / "metrics.jsonl");
  for (auto* text : {&result, &curve}) *text = std::regex_replace(*text, std::regex("\"absorption(_[a-z_]+)?\""), "\"absorb$1\"");
  ASSERT_NE(result.find("\"absorb_active_fraction\""), std::string::npos) << result;
  ASSERT_NE(curve.find("\"absorb\""), std::string::npos) << curve;
  std::ofstream(dir / "result.json", std::ios::trunc) << result;
  std::ofstream(dir / "metrics.jsonl", std::ios::trunc) << curve;

  auto run = sweep_report(out, "legacy_names");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const json report = read_json(out / "report.json");
  EXPECT_TRUE(report["absorption_never_fired"].empty()) << report["absorption_never_fired"];
  for (const auto& job : report["jobs"]) {
    if (job["id"] != "pen") continue;
    EXPECT_EQ(job["metrics"]["absorption_active_fraction"], 0.5);
    EXPECT_FALSE(job["metrics"].contains("absorb_active_fraction"));
    EXPECT_TRUE(job["curve"].contains("absorption")) << job["curve"].dump();
    EXPECT_TRUE(job["absorption_fired"].get<bool>());
  }
}

// A broken curve makes its job "damaged" in a report that is still written (the next run trains
// it again), with the file and line named.
TEST(SweepReportCommand, NamesTheFileAndLineOfABrokenCurveAndMarksItsJobDamaged) {
  const fs::path out = scratch() / "broken_curve";
  write_crafted_sweep(out, "broken",
                      {done_job("base", {{"absorption.enabled", false}}, crafted_metrics(0.9, 10.0, 0.8, 0.2, 0.0))});
  std::ofstream(out / "jobs" / "base" / "metrics.jsonl", std::ios::app) << "{\"step\": 225, \"loss\"\n";
  auto run = sweep_report(out, "broken_curve");
  EXPECT_EQ(run.exit_code, 0) << run.log;
  EXPECT_NE(run.log.find((out / "jobs" / "base" / "metrics.jsonl").string() + ":9: not valid JSON"), std::string::npos)
      << run.log;
  const json report = read_json(out / "report.json");
  EXPECT_EQ(report["jobs"][0]["status"], "damaged");
  EXPECT_EQ(report["counts"]["damaged"], 1);
}

}  // namespace

// The Pareto front, found in one sort, against its definition pair by pair: jobs on a grid of L0
// and explained variance with ties in each, some failed; and every penalised job finds its
// baseline by its params without a scan.
TEST(ReportFromRecords, ParetoFrontAndBaselinesMatchTheirDefinitions) {
  std::vector<sweep::launcher::JobRecord> records;
  for (int i = 0; i < 60; ++i) {
    const bool baseline = i % 3 == 0;
    json params = {{"train.lr", 1e-4 * (1 + i / 3)}};
    if (!baseline) params["absorption.ratio_threshold"] = 5.0 * (i % 3);
    json metrics = {{"l0", 2.0 + (i * 7) % 5}, {"explained_variance", 0.9 + 0.01 * ((i * 11) % 4)},
                    {"absorption_active_fraction", baseline ? 0.0 : 0.1}};
    records.push_back({{{"id", "j" + std::to_string(i)},
                        {"status", i % 13 == 5 ? "failed" : "done"},
                        {"params", params},
                        {"config", {{"absorption.enabled", !baseline}}},
                        {"metrics", metrics}},
                       json::object()});
  }
  auto report = sweep::launcher::build_report("grid", records);
  const auto& jobs = report["jobs"];
  int on_front = 0;
  for (const auto& job : jobs) {
    if (job["status"] != "done") continue;
    const double l0 = job["metrics"]["l0"], ev = job["metrics"]["explained_variance"];
    bool dominated = false;
    for (const auto& other : jobs) {
      if (other["status"] != "done") continue;
      const double l0_o = other["metrics"]["l0"], ev_o = other["metrics"]["explained_variance"];
      dominated = dominated || (l0_o <= l0 && ev_o >= ev && (l0_o < l0 || ev_o > ev));
    }
    EXPECT_EQ(job["pareto"].get<bool>(), !dominated) << job["id"];
    on_front += !dominated;
    if (!job["baseline"].get<bool>()) {
      const int i = std::stoi(job["id"].get<std::string>().substr(1));
      EXPECT_EQ(job["baseline_id"], "j" + std::to_string(i - i % 3)) << job["id"];
    }
  }
  EXPECT_GT(on_front, 1);
  EXPECT_LT(on_front, 20);
}
