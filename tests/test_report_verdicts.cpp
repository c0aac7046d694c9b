// The report's verdicts on crafted sweep outputs, through `sweep report`: a job equal to its
// baseline, a penalty that never fired, the best job per objective, failed / preempted / missing
// jobs, tolerances from seed replicas; checked in report.json and report.md. Also the error for
// a directory that is not a sweep output.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/region_share.h"
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

// The ids of the jobs behind verdict entries that name grid points ("point": label).
std::set<std::string> point_jobs(const json& report, const json& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) {
    for (const auto& p : report["points"]) {
      if (p["label"] != e["point"]) continue;
      for (const auto& id : p["jobs"]) out.insert(id.get<std::string>());
    }
  }
  return out;
}

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
  EXPECT_EQ(point_jobs(report_, eq["points"]), (std::set<std::string>{"equal", "never"}));
  EXPECT_EQ(eq["compared"], 4) << "equal, never, better and worse have a finished baseline";
  const json& e = find_by(eq["points"], "point", job("equal")["point"]);
  EXPECT_EQ(e["baseline_point"], job("base")["point"]);
  EXPECT_EQ(e["from"], "fixed");
  EXPECT_NEAR(e["tolerances"]["explained_variance"].get<double>(), 0.001, 1e-12);
  EXPECT_NEAR(e["tolerances"]["l0"].get<double>(), 0.1, 1e-12) << "1% of the baseline's L0";
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
  auto winner = [&](const char* objective) { return find_by(best, "objective", objective)["point"]; };
  // "worse" has the least absorption but loses 0.03 of explained variance: not a candidate.
  EXPECT_EQ(winner("lowest_gt_absorption"), job("better")["point"]);
  EXPECT_EQ(find_by(best, "objective", "lowest_gt_absorption")["baseline_value"], 0.2);
  EXPECT_EQ(winner("best_gt_mcc"), job("better")["point"]);
  EXPECT_EQ(winner("lowest_l0"), job("better")["point"]);
  // L0 within 10% of 10: base, equal, never, better; "equal" explains the most variance.
  EXPECT_EQ(winner("best_explained_variance_at_baseline_l0"), job("equal")["point"]);
  EXPECT_EQ(find_by(best, "objective", "best_explained_variance_at_baseline_l0")["candidates"], 4);
  EXPECT_TRUE(find_by(best, "objective", "lowest_gt_absorption")["distinguishable"].is_null()) << "one replica";
  EXPECT_NE(md_.find("Lowest gt_absorption (mean over replicas) with mean explained variance at most 0.01 below its "
                     "baseline's (report.ev_tolerance): job better"),
            std::string::npos)
      << md_;
  EXPECT_NE(md_.find("with fewer than 2 paired replicas this cannot be told from seed noise"), std::string::npos) << md_;
}

// report.ev_tolerance, as the plan records it, bounds the single best point: at 0.05, "worse"
// (0.03 below the baseline's explained variance) qualifies and absorbs least.
TEST_F(CraftedVerdicts, TheExplainedVarianceToleranceComesFromThePlan) {
  const fs::path copy = scratch() / "crafted_tolerance";
  fs::remove_all(copy);
  fs::copy(out_, copy, fs::copy_options::recursive);
  json plan = read_json(copy / "plan.json");
  plan["report"] = {{"report.ev_tolerance", 0.05}};
  std::ofstream(copy / "plan.json", std::ios::trunc) << plan.dump();
  auto run = sweep_report(copy, "crafted_tolerance_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const json report = read_json(copy / "report.json");
  EXPECT_EQ(report["settings"]["ev_tolerance"], 0.05);
  EXPECT_EQ(find_by(report["verdicts"]["best"], "objective", "lowest_gt_absorption")["point"], job("worse")["point"]);
  EXPECT_NE(read_text(copy / "report.md").find("at most 0.05 below its baseline's (report.ev_tolerance)"), std::string::npos);
  plan["report"] = {{"report.ev_tolerance", "lots"}};
  std::ofstream(copy / "plan.json", std::ios::trunc) << plan.dump();
  auto refused = sweep_report(copy, "crafted_tolerance_refused");
  EXPECT_EQ(refused.exit_code, 2) << refused.log;
  EXPECT_NE(refused.log.find("report.ev_tolerance must be a number"), std::string::npos) << refused.log;
}

TEST_F(CraftedVerdicts, UnfinishedJobsAreListedWithTheirReason) {
  const json& nf = report_["verdicts"]["not_finished"];
  EXPECT_EQ(ids(nf), (std::set<std::string>{"failed", "preempted"})) << "a job never started is pending, not failed";
  EXPECT_EQ(report_["verdicts"]["pending"], json({"missing"}));
  EXPECT_EQ(job("missing")["attempts"], 0);
  EXPECT_EQ(find_by(nf, "id", "failed")["reason"], "loss diverged at step 12 (loss = inf)");
  EXPECT_EQ(find_by(nf, "id", "failed")["attempts"], 2);
  EXPECT_NE(md_.find("1 job(s) have not run yet"), std::string::npos) << md_;
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
  for (const auto& p : report_["points"]) {
    if (p.value("pareto", false)) front.insert(p["jobs"][0].get<std::string>());
  }
  // "worse" (L0 12, EV 0.87) is beaten by the baseline on both; the others trade L0 for EV.
  EXPECT_EQ(front, (std::set<std::string>{"base", "equal", "never", "better"}));
  EXPECT_EQ(job("better")["curve"]["step"].size(), 8u);
  EXPECT_EQ(job("better")["curve"]["step"][7], 200);
  EXPECT_EQ(job("failed")["curve"]["loss"].size(), 1u) << "a failed job's partial curve is kept";
  EXPECT_TRUE(job("missing")["curve"].empty());
}

TEST_F(CraftedVerdicts, OneReplicaPerPointIsLoudlyUntellableFromSeedNoise) {
  const json& r = report_["verdicts"]["replication"];
  EXPECT_FALSE(r["replicated"].get<bool>());
  EXPECT_EQ(r["max_n"], 1);
  EXPECT_TRUE(report_["verdicts"]["effects"].empty()) << "no paired replicas, no effects";
  EXPECT_NE(md_.find("> **WARNING: Every grid point has a single replica, so no difference in this report can be told "
                     "from seed noise"),
            std::string::npos)
      << md_;
  EXPECT_NE(md_.find("--set 'grid.seed=["), std::string::npos) << "says how to add seeds\n" << md_;
}

// Three seeds per grid point: a baseline, a penalty with no effect (differences that change sign
// from seed to seed) and one with a real effect on gt_absorption (-0.03, far beyond the spread).
class ReplicatedVerdicts : public ::testing::Test {
 protected:
  struct Seeded {
    double ev, l0, mcc, absorption;
  };
  static inline const Seeded kBase[] = {{0.90, 10.0, 0.80, 0.20}, {0.92, 11.0, 0.83, 0.18}, {0.91, 10.5, 0.81, 0.22}};
  // Per seed, added to the baseline's: a no-op and an effect.
  static inline const Seeded kNoop[] = {{0.0005, 0.05, 0.002, 0.003}, {-0.0004, -0.05, -0.001, -0.002}, {-0.0001, 0.0, -0.001, -0.001}};
  static inline const Seeded kEffect[] = {{0.0005, 0.05, 0.012, -0.028}, {-0.0004, -0.05, 0.009, -0.031}, {-0.0001, 0.0, 0.010, -0.031}};

  static CraftedJob job(const std::string& id, int seed, const json& point, const Seeded& add, double fired) {
    const Seeded& b = kBase[seed - 1];
    json params = point;
    params["seed"] = seed;
    return done_job(id, params,
                    crafted_metrics(b.ev + add.ev, b.l0 + add.l0, b.mcc + add.mcc, b.absorption + add.absorption, fired));
  }

  static void SetUpTestSuite() {
    out_ = scratch() / "replicated";
    std::vector<CraftedJob> jobs;
    for (int seed = 1; seed <= 3; ++seed) {
      const std::string s = std::to_string(seed);
      jobs.push_back(job("base" + s, seed, {{"absorption.enabled", false}}, {0, 0, 0, 0}, 0.0));
      jobs.push_back(job("noop" + s, seed, ratio(5.0), kNoop[seed - 1], 0.5));
      jobs.push_back(job("effect" + s, seed, ratio(20.0), kEffect[seed - 1], 0.5));
    }
    write_crafted_sweep(out_, "replicated", jobs);
    run_ = sweep_report(out_, "replicated_report");
  }

  void SetUp() override {
    ASSERT_EQ(run_.exit_code, 0) << run_.log;
    report_ = read_json(out_ / "report.json");
    md_ = read_text(out_ / "report.md");
  }

  const json& point_of(const std::string& job_id) const {
    for (const auto& j : report_["jobs"]) {
      if (j["id"] == job_id) return find_by(report_["points"], "label", j["point"]);
    }
    static const json none;
    ADD_FAILURE() << "no job " << job_id;
    return none;
  }

  static inline fs::path out_;
  static inline RunResult run_;
  json report_;
  std::string md_;
};

TEST_F(ReplicatedVerdicts, EachPointHasNMeanAndSdOverItsSeeds) {
  EXPECT_EQ(report_["replica_keys"], json({"seed", "data.seed"}));
  ASSERT_EQ(report_["points"].size(), 3u) << "seeds are replicas, not grid points";
  const json& base = point_of("base1");
  EXPECT_EQ(base["n"], 3);
  EXPECT_EQ(base["jobs"], json({"base1", "base2", "base3"}));
  double mean = 0, squares = 0;
  for (const auto& b : kBase) mean += b.ev / 3;
  for (const auto& b : kBase) squares += (b.ev - mean) * (b.ev - mean);
  EXPECT_NEAR(base["metrics"]["explained_variance"]["mean"].get<double>(), mean, 1e-12);
  EXPECT_NEAR(base["metrics"]["explained_variance"]["sd"].get<double>(), std::sqrt(squares / 2), 1e-12);
  // The paired difference of the effect on gt_absorption, and its t interval (t_0.975 with 2 df).
  double d_mean = 0, d_squares = 0;
  for (const auto& e : kEffect) d_mean += e.absorption / 3;
  for (const auto& e : kEffect) d_squares += (e.absorption - d_mean) * (e.absorption - d_mean);
  const double half = 4.3027 * std::sqrt(d_squares / 2) / std::sqrt(3.0);
  const json& d = point_of("effect1")["paired"]["gt_absorption"];
  EXPECT_EQ(d["n"], 3);
  EXPECT_NEAR(d["mean"].get<double>(), d_mean, 1e-12);
  EXPECT_NEAR(d["ci_low"].get<double>(), d_mean - half, 1e-6);
  EXPECT_NEAR(d["ci_high"].get<double>(), d_mean + half, 1e-6);
  EXPECT_TRUE(d["distinguishable"].get<bool>());
  EXPECT_FALSE(point_of("noop1")["paired"]["gt_absorption"]["distinguishable"].get<bool>());
}

TEST_F(ReplicatedVerdicts, APenaltyWithoutEffectIsWithinNoise) {
  const json& eq = report_["verdicts"]["equal_to_baseline"];
  EXPECT_EQ(eq["compared"], 2);
  ASSERT_EQ(eq["points"].size(), 1u) << eq.dump(2);
  EXPECT_EQ(eq["points"][0]["point"], point_of("noop1")["label"]);
  EXPECT_EQ(eq["points"][0]["from"], "paired replicas");
  EXPECT_NE(md_.find("Equal to its baseline within noise: absorption.ratio_threshold=5.0 (3 of 3 replicas finished)"),
            std::string::npos)
      << md_;
  EXPECT_NE(md_.find("absorption.ratio_threshold=5.0 against its baseline (paired over 3 replicas): "), std::string::npos)
      << md_;
  EXPECT_NE(md_.find("; gt_absorption unchanged within noise ("), std::string::npos) << md_;
  EXPECT_EQ(md_.find("WARNING: Every grid point has a single replica"), std::string::npos) << md_;
}

// Methods compared: every point that keeps the explained-variance bound, ranked by its mean
// absorption, with its spread and n.
TEST_F(ReplicatedVerdicts, PointsAreRankedByAbsorptionWithinTheExplainedVarianceBound) {
  const json* entry = nullptr;
  for (const auto& b : report_["verdicts"]["best"]) {
    if (b["objective"] == "lowest_gt_absorption") entry = &b;
  }
  ASSERT_NE(entry, nullptr);
  const auto& ranking = (*entry)["ranking"];
  ASSERT_EQ(ranking.size(), 3u) << entry->dump(2);
  EXPECT_EQ(ranking[0]["point"], point_of("effect1")["label"]);
  for (size_t i = 1; i < ranking.size(); ++i) EXPECT_LE(ranking[i - 1]["mean"].get<double>(), ranking[i]["mean"].get<double>());
  EXPECT_EQ(ranking[0]["n"], 3);
  EXPECT_NEAR(ranking[0]["sd"].get<double>(), point_of("effect1")["metrics"]["gt_absorption"]["sd"].get<double>(), 1e-12);
  EXPECT_TRUE((*entry)["left_out"].empty());
  EXPECT_NE(md_.find("Ranked by gt_absorption (mean ± sd over replicas), the 3 points that keep the same bound: 1. "
                     "absorption.ratio_threshold=20.0"),
            std::string::npos)
      << md_;
}

// The headline: per penalised point, the effect on gt_absorption relative to the baseline's mean
// over the same replicas, with its interval, and the cost in explained variance; largest
// reduction first, and at the top of report.md.
TEST_F(ReplicatedVerdicts, TheHeadlineGivesRelativeEffectsLargestReductionFirst) {
  double base_mean = 0, d_mean = 0;
  for (const auto& b : kBase) base_mean += b.absorption / 3;
  for (const auto& e : kEffect) d_mean += e.absorption / 3;
  const json& d = point_of("effect1")["paired"]["gt_absorption"];
  EXPECT_NEAR(d["relative"]["mean"].get<double>(), d_mean / base_mean, 1e-12);
  EXPECT_NEAR(d["relative"]["ci_low"].get<double>(), d["ci_low"].get<double>() / base_mean, 1e-12);
  EXPECT_NEAR(d["relative"]["ci_high"].get<double>(), d["ci_high"].get<double>() / base_mean, 1e-12);
  EXPECT_NEAR(d["relative"]["baseline_mean"].get<double>(), base_mean, 1e-12);
  EXPECT_NE(report_["relative_effect_rule"].get<std::string>().find("divided by"), std::string::npos);

  const json& headline = report_["verdicts"]["headline"];
  ASSERT_EQ(headline.size(), 2u) << headline.dump(2);
  EXPECT_EQ(headline[0]["point"], point_of("effect1")["label"]) << "the largest reduction first";
  EXPECT_EQ(headline[1]["point"], point_of("noop1")["label"]);
  EXPECT_EQ(headline[0]["metric"], "gt_absorption");
  EXPECT_TRUE(headline[0]["distinguishable"].get<bool>());
  const double percent = 100 * d_mean / base_mean;  // about -15%
  const std::string line = "- **absorption.ratio_threshold=20.0: gt_absorption " + std::to_string(std::lround(percent)) + "% (95% CI ";
  const auto at = md_.find(line);
  ASSERT_NE(at, std::string::npos) << line << "\n" << md_;
  EXPECT_LT(md_.find("## Headline"), at);
  EXPECT_LT(at, md_.find("## Verdicts")) << "the headline comes before the verdicts";
  EXPECT_LT(md_.find("; explained variance ", at), md_.find('\n', at)) << "with its cost";
  EXPECT_LT(md_.find("; n = 3", at), md_.find('\n', at));
  const auto noop = md_.find("- **absorption.ratio_threshold=5.0: gt_absorption ");
  ASSERT_NE(noop, std::string::npos) << md_;
  EXPECT_LT(md_.find("within seed noise", noop), md_.find('\n', noop));
}

// The trade-off front of gt_absorption against explained variance holds exactly the points no
// other point beats on both means.
TEST_F(ReplicatedVerdicts, TheTradeOffFrontHoldsTheUndominatedPoints) {
  const json& best = find_by(report_["verdicts"]["best"], "objective", "lowest_gt_absorption");
  std::set<std::string> front;
  for (const auto& f : best["front"]) front.insert(f["point"].get<std::string>());
  ASSERT_FALSE(front.empty());
  auto means = [](const json& p) {
    return std::pair<double, double>{p["metrics"]["gt_absorption"]["mean"], p["metrics"]["explained_variance"]["mean"]};
  };
  for (const auto& p : report_["points"]) {
    bool dominated = false;
    for (const auto& q : report_["points"]) {
      auto [a, ev] = means(p);
      auto [qa, qev] = means(q);
      dominated = dominated || (qa <= a && qev >= ev && (qa < a || qev > ev));
    }
    EXPECT_EQ(front.count(p["label"].get<std::string>()) == 1, !dominated) << p["label"];
  }
  EXPECT_NE(md_.find("The gt_absorption / explained-variance trade-off"), std::string::npos) << md_;
}

// A point with another penalty on (OrtSAE's) and the absorption penalty off is penalised, paired
// with the baseline that has every penalty off; the absorption penalty's own checks (did it fire,
// does its flagged region hold the absorbing pairs) leave it alone.
TEST(ReportFromRecords, APointWithAnotherPenaltyIsPairedWithTheBaselineOfEveryPenaltyOff) {
  std::vector<CraftedJob> jobs;
  for (int seed = 1; seed <= 3; ++seed) {
    const double d = 0.001 * seed;
    auto base = crafted_metrics(0.90 + d, 12.0, 0.8, 0.05 + d, 0.0), orth = crafted_metrics(0.89 + d, 12.0, 0.8, 0.03 + d, 0.0);
    base["gt_pairs_in_region"] = orth["gt_pairs_in_region"] = 0.01;
    jobs.push_back(done_job("base" + std::to_string(seed), {{"absorption.enabled", false}, {"seed", seed}}, base));
    jobs.push_back(done_job("orth" + std::to_string(seed),
                            {{"absorption.enabled", false}, {"orthogonality.penalty", 1.0}, {"seed", seed}}, orth));
  }
  const auto out = scratch() / "other_penalty";
  write_crafted_sweep(out, "other_penalty", jobs);
  auto run = sweep_report(out, "other_penalty_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const auto report = read_json(out / "report.json");
  ASSERT_EQ(report["points"].size(), 2u);
  for (const auto& point : report["points"]) {
    const bool orthogonal = point["params"].contains("orthogonality.penalty");
    EXPECT_EQ(point["baseline"].get<bool>(), !orthogonal) << point.dump();
    if (!orthogonal) continue;
    EXPECT_EQ(point["paired"]["gt_absorption"]["n"], 3) << point.dump();
    EXPECT_NEAR(point["paired"]["gt_absorption"]["mean"].get<double>(), -0.02, 1e-9);
  }
  const auto md = read_text(out / "report.md");
  EXPECT_EQ(md.find("never fired"), std::string::npos) << md;
  EXPECT_EQ(md.find("flagged region holds few"), std::string::npos) << md;
  EXPECT_NE(md.find("orthogonality.penalty=1.0 against its baseline (paired over 3 replicas): lowers explained_variance"),
            std::string::npos)
      << md;
}

// A report written before anything ran: the jobs are pending with 0 attempts, not failed, and the
// advice is to finish the planned replicas, not to add seeds.
TEST(ReportFromRecords, BeforeAnythingRanJobsArePendingNotFailed) {
  std::vector<CraftedJob> jobs;
  for (int seed = 1; seed <= 4; ++seed) {
    jobs.push_back(unfinished_job("pending" + std::to_string(seed), {{"absorption.enabled", false}, {"seed", seed}},
                                  "missing", "", 0, 0));
  }
  const auto out = scratch() / "nothing_ran";
  write_crafted_sweep(out, "nothing_ran", jobs);
  auto run = sweep_report(out, "nothing_ran_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const auto report = read_json(out / "report.json");
  for (const auto& job : report["jobs"]) {
    EXPECT_EQ(job["status"], "pending");
    EXPECT_EQ(job["attempts"], 0);
  }
  EXPECT_TRUE(report["verdicts"]["not_finished"].empty()) << report["verdicts"].dump(2);
  EXPECT_EQ(report["verdicts"]["pending"].size(), 4u);
  const auto md = read_text(out / "report.md");
  EXPECT_EQ(md.find("## Failed jobs"), std::string::npos) << md;
  EXPECT_NE(md.find("4 job(s) have not run yet (pending, 0 attempts)"), std::string::npos) << md;
  EXPECT_EQ(md.find("Every grid point has a single replica"), std::string::npos) << md;
  EXPECT_NE(md.find("No grid point has two finished replicas yet (up to 4 are planned)"), std::string::npos) << md;
}

TEST_F(ReplicatedVerdicts, ARealEffectIsReportedWithItsInterval) {
  const auto sentence = md_.find("absorption.ratio_threshold=20.0 against its baseline (paired over 3 replicas): ");
  ASSERT_NE(sentence, std::string::npos) << md_;
  EXPECT_LT(md_.find("lowers gt_absorption by 0.03 (95% CI ", sentence), md_.find('\n', sentence)) << md_;
  EXPECT_NE(md_.find("raises gt_mcc by"), std::string::npos) << md_;
  const json& best = find_by(report_["verdicts"]["best"], "objective", "lowest_gt_absorption");
  EXPECT_EQ(best["point"], point_of("effect1")["label"]);
  EXPECT_EQ(best["n"], 3);
  EXPECT_TRUE(best["distinguishable"].get<bool>());
  EXPECT_NE(md_.find("is distinguishable from seed noise"), std::string::npos) << md_;
  // Best explained variance at the baseline's L0 is chosen on means; its edge is noise.
  const json& ev = find_by(report_["verdicts"]["best"], "objective", "best_explained_variance_at_baseline_l0");
  if (!ev["distinguishable"].is_null()) EXPECT_FALSE(ev["distinguishable"].get<bool>()) << ev.dump();
}

// The coverage verdicts. Each job records, per latent pair matched to a true (parent, child) pair
// and per top pair, its decoder cosine, ratio and activity at the end of training.
json coverage_of(double tau, double rho, std::vector<double> cosines, std::vector<double> ratios) {
  const size_t n = cosines.size();
  std::vector<int> i(n), j(n);
  for (size_t k = 0; k < n; ++k) i[k] = static_cast<int>(k), j[k] = static_cast<int>(k + n);
  std::vector<bool> matched(n, true), active(n, true), inside(n, false);
  matched.back() = false;  // the last is a top pair, matched to nothing
  return json{{"tau", tau}, {"rho", rho}, {"activation_threshold", 0.001}, {"ratio_kind", "lift"}, {"i", i}, {"j", j},
              {"cosine", cosines}, {"ratio", ratios}, {"matched", matched}, {"active", active}, {"in_region", inside}};
}

// A baseline and one penalised job with the given coverages; returns report.json, with report.md in `md`.
json coverage_report(const std::string& name, double tau, const json& base_coverage, const json& pen_coverage,
                     std::string& md) {
  const fs::path out = scratch() / name;
  json base_metrics = crafted_metrics(0.9, 10.0, 0.8, 0.2, 0.0), pen_metrics = crafted_metrics(0.9, 10.0, 0.8, 0.19, 0.5);
  base_metrics["gt_pairs_in_region"] = 0.0;
  pen_metrics["gt_pairs_in_region"] = *sweep::launcher::share_in_region(pen_coverage, tau, 5.0);
  write_crafted_sweep(out, name,
                      {done_job("base", {{"absorption.enabled", false}}, base_metrics),
                       done_job("pen", {{"absorption.dot_threshold", tau}}, pen_metrics)});
  for (const auto& [id, c] : {std::pair<std::string, json>{"base", base_coverage}, {"pen", pen_coverage}}) {
    json result = read_json(out / "jobs" / id / "result.json");
    result["absorption_coverage"] = c;
    std::ofstream(out / "jobs" / id / "result.json", std::ios::trunc) << result.dump();
  }
  auto run = sweep_report(out, name + "_report");
  EXPECT_EQ(run.exit_code, 0) << run.log;
  md = read_text(out / "report.md");
  return read_json(out / "report.json");
}

// Whether the region reaches the absorbing pairs is judged before the penalty acts: on the
// baseline's SAE at the penalised point's tau and rho. Here the baseline has three of its four
// matched pairs inside tau 0.5, rho 5, and the penalty pushed all of them out: no warning, and
// the report says what the penalty did.
TEST(SweepReportCommand, APenaltyThatEmptiesTheRegionIsNotWarnedAbout) {
  std::string md;
  const json report = coverage_report("coverage_works", 0.5,
                                      coverage_of(0.8, 5.0, {0.6, 0.7, 0.9, 0.3, 0.95}, {20.0, 8.0, 6.0, 30.0, 2.0}),
                                      coverage_of(0.5, 5.0, {0.3, 0.2, 0.45, 0.1, 0.9}, {20.0, 8.0, 6.0, 30.0, 2.0}), md);
  const json& points = report["verdicts"]["coverage"]["points"];
  ASSERT_EQ(points.size(), 1u) << report["verdicts"]["coverage"].dump();
  EXPECT_EQ(points[0]["judged_on"], "baseline");
  EXPECT_DOUBLE_EQ(points[0]["baseline_share"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(points[0]["share"].get<double>(), 0.0);
  EXPECT_FALSE(points[0]["few"].get<bool>());
  EXPECT_EQ(md.find("WARNING: The flagged region"), std::string::npos) << md;
  EXPECT_NE(md.find("75% of the latent pairs matched to true (parent, child) features were in the flagged region"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("0% remain in it at the end of training with the penalty"), std::string::npos) << md;
  // The point's difference in the region's share is to the baseline's at tau 0.5 (0.75), not at
  // the baseline's own thresholds (0.8: 0.25).
  const json& pen = find_by(report["jobs"], "id", "pen");
  EXPECT_DOUBLE_EQ(pen["delta"]["gt_pairs_in_region"].get<double>(), -0.75);
}

// A tau above every matched pair's decoder cosine: the region could never reach them, and says so.
TEST(SweepReportCommand, WarnsWhenTauIsAboveEveryMatchedPair) {
  std::string md;
  const json report = coverage_report("coverage_unreachable", 0.97,
                                      coverage_of(0.8, 5.0, {0.6, 0.7, 0.9, 0.3, 0.99}, {20.0, 8.0, 6.0, 30.0, 9.0}),
                                      coverage_of(0.97, 5.0, {0.6, 0.7, 0.9, 0.3, 0.99}, {20.0, 8.0, 6.0, 30.0, 9.0}), md);
  const json& points = report["verdicts"]["coverage"]["points"];
  ASSERT_EQ(points.size(), 1u) << report["verdicts"]["coverage"].dump();
  EXPECT_TRUE(points[0]["few"].get<bool>());
  EXPECT_DOUBLE_EQ(points[0]["baseline_share"].get<double>(), 0.0);
  EXPECT_EQ(points[0]["tau"], 0.97);
  EXPECT_NE(md.find("> **WARNING: The flagged region of job pen (absorption.dot_threshold=0.97) reaches few of the pairs "
                    "that absorb: only 0% of the latent pairs"),
            std::string::npos)
      << md;
}

// grid.replicas names further replica axes (any setting): jobs differing only there are one point.
TEST(ReportFromRecords, GridReplicasNameFurtherReplicaAxes) {
  std::vector<sweep::launcher::JobRecord> records;
  for (int i = 0; i < 4; ++i) {
    json params = {{"train.warmup_steps", i % 2}, {"train.lr", i < 2 ? 1e-3 : 1e-4}};
    records.push_back({{{"id", "j" + std::to_string(i)},
                        {"status", "done"},
                        {"params", params},
                        {"config", {{"absorption.enabled", false}}},
                        {"metrics", {{"l0", 1.0 + i}, {"explained_variance", 0.9}}}},
                       json::object()});
  }
  auto plain = sweep::launcher::build_report("grid", records);
  EXPECT_EQ(plain["points"].size(), 4u);
  auto grouped = sweep::launcher::build_report("grid", records, {"train.warmup_steps"});
  ASSERT_EQ(grouped["points"].size(), 2u);
  EXPECT_EQ(grouped["points"][0]["n"], 2);
  EXPECT_NEAR(grouped["points"][0]["metrics"]["l0"]["mean"].get<double>(), 1.5, 1e-12);
  EXPECT_EQ(grouped["replica_keys"], json({"seed", "data.seed", "train.warmup_steps"}));
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
  const auto& points = report["points"];
  ASSERT_EQ(points.size(), jobs.size()) << "without replicas every job is its own grid point";
  int on_front = 0;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const auto& job = jobs[k];
    if (job["status"] != "done") {
      EXPECT_FALSE(points[k].contains("pareto")) << job["id"];
      continue;
    }
    const double l0 = job["metrics"]["l0"], ev = job["metrics"]["explained_variance"];
    bool dominated = false;
    for (const auto& other : jobs) {
      if (other["status"] != "done") continue;
      const double l0_o = other["metrics"]["l0"], ev_o = other["metrics"]["explained_variance"];
      dominated = dominated || (l0_o <= l0 && ev_o >= ev && (l0_o < l0 || ev_o > ev));
    }
    EXPECT_EQ(points[k]["pareto"].get<bool>(), !dominated) << job["id"];
    on_front += !dominated;
    if (!job["baseline"].get<bool>()) {
      const int i = std::stoi(job["id"].get<std::string>().substr(1));
      EXPECT_EQ(job["baseline_id"], "j" + std::to_string(i - i % 3)) << job["id"];
    }
  }
  EXPECT_GT(on_front, 1);
  EXPECT_LT(on_front, 20);
}
