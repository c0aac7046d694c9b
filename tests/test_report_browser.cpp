// report.html in real headless Chromium with the network off (tests/report_in_browser.js): no
// console error or warning, no request, every plot drawn with marks, the table sorts; for a
// crafted sweep and for a real small one. Screenshots go to <build>/test_artifacts/.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tests/crafted_sweep.h"
#include "tests/process_support.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace sweep::testing;

namespace {

std::string joined(const json& list) {
  std::string out;
  for (const auto& item : list) out += "\n  " + item.get<std::string>();
  return out;
}

// Opens out/report.html; returns what tests/report_in_browser.js saw.
json open_in_chromium(const fs::path& out, const std::string& name) {
  const fs::path chromium = SWEEP_CHROMIUM, node = SWEEP_NODE;
  const fs::path modules = fs::path(SWEEP_SOURCE_DIR) / "report_assets" / "node_modules";
  if (!fs::exists(chromium) || !fs::exists(node) || !fs::exists(modules / "playwright-core")) {
    ADD_FAILURE() << "needs chromium (" << chromium << "), node (" << node << ") and " << modules / "playwright-core"
                  << ": run scripts/setup, then configure again";
    return nullptr;
  }
  const fs::path artifacts = fs::path(SWEEP_BUILD_DIR) / "test_artifacts";
  fs::create_directories(artifacts);
  const fs::path seen_file = scratch() / (name + "_seen.json");
  auto run = run_command(
      {"env", "NODE_PATH=" + modules.string(), node.string(),
       std::string(SWEEP_SOURCE_DIR) + "/tests/report_in_browser.js", chromium.string(), (out / "report.html").string(),
       (artifacts / ("report_" + name + ".png")).string(), seen_file.string()},
      name + "_browser");
  if (run.exit_code != 0 || !fs::exists(seen_file)) {
    ADD_FAILURE() << "report_in_browser.js failed:\n" << run.log;
    return nullptr;
  }
  return read_json(seen_file);
}

bool sorted(std::vector<double> values, bool ascending) {
  if (!ascending) std::reverse(values.begin(), values.end());
  return std::is_sorted(values.begin(), values.end());
}

// The checks every report.html must pass; `done` is the number of finished jobs.
void expect_renders_offline(const json& seen, const json& report) {
  ASSERT_FALSE(seen.is_null());
  EXPECT_TRUE(seen["requests"].empty()) << "network requests:" << joined(seen["requests"]);
  EXPECT_TRUE(seen["consoleErrors"].empty()) << "console errors:" << joined(seen["consoleErrors"]);
  EXPECT_TRUE(seen["consoleWarnings"].empty()) << "console warnings:" << joined(seen["consoleWarnings"]);
  EXPECT_TRUE(seen["pageErrors"].empty()) << "page errors:" << joined(seen["pageErrors"]);
  EXPECT_EQ(seen["plotsState"], "rendered");
  EXPECT_EQ(seen["title"], "Sweep " + report["sweep"].get<std::string>());
  EXPECT_FALSE(seen["verdicts"].empty());

  // Plots: the L0 / EV plot, each key metric present against each swept param, the curves.
  int metrics_present = 0, swept = 0;
  for (const char* metric : {"explained_variance", "gt_absorption", "gt_mcc", "absorption_pairs_mean"}) {
    bool any = false;
    for (const auto& job : report["jobs"]) any = any || (job["status"] == "done" && job["metrics"].contains(metric));
    metrics_present += any;
  }
  const json& replicas = report["replica_keys"];
  for (const auto& key : report["swept_keys"]) {
    swept += key != "absorption.enabled" && std::find(replicas.begin(), replicas.end(), key) == replicas.end();
  }
  int done = report["counts"]["done"];
  bool coverage = false, interventions = false;
  for (const auto& job : report["jobs"]) {
    coverage = coverage || job.contains("absorption_coverage");
    interventions = interventions || job["metrics"].contains("clamp_coordinated_removal");
  }
  // A trade-off plot per absorption metric that two grid points measured with explained variance.
  int tradeoffs = 0;
  for (const char* metric : {"gt_absorption", "probe_absorption_fraction"}) {
    int points = 0;
    for (const auto& p : report["points"]) points += p["metrics"].contains(metric) && p["metrics"].contains("explained_variance");
    tradeoffs += points >= 2;
  }
  ASSERT_EQ(seen["plots"].size(), static_cast<size_t>(2 + coverage + interventions + tradeoffs + metrics_present * swept))
      << seen["plots"].dump(1);
  EXPECT_EQ(seen["specIds"].size(), seen["plots"].size());
  for (const auto& plot : seen["plots"]) {
    const std::string id = plot["id"];
    SCOPED_TRACE(id);
    EXPECT_EQ(plot["svgs"], 1) << "drawn as one SVG";
    const json& marks = plot["marks"];
    if (id == "plot-pareto") {
      EXPECT_GE(marks.value("mark-symbol", 0), done + 1) << "a point per finished job, a ring per front point";
      EXPECT_GE(marks.value("mark-line", 0), 1) << "the Pareto front";
    } else if (id.rfind("plot-tradeoff-", 0) == 0) {
      const std::string metric = id.substr(std::string("plot-tradeoff-").size());
      int points = 0;
      for (const auto& p : report["points"]) points += p["metrics"].contains(metric) && p["metrics"].contains("explained_variance");
      EXPECT_GE(marks.value("mark-symbol", 0), points + 1) << "a mark per grid point, a ring per front point";
      EXPECT_GE(marks.value("mark-rule", 0), 2 * points) << "error bars both ways per grid point";
      EXPECT_GE(marks.value("mark-line", 0), 1) << "the front";
    } else if (id == "plot-coverage") {
      EXPECT_GE(marks.value("mark-symbol", 0), 10) << "the highest-cosine pairs of each grid point";
      EXPECT_GE(marks.value("mark-rule", 0), 2) << "tau and rho";
    } else if (id == "plot-interventions") {
      EXPECT_GE(marks.value("mark-symbol", 0), 6) << "faint replicas and means for three strategies";
    } else if (id == "plot-curves") {
      EXPECT_GE(marks.value("mark-line", 0), 3 * done) << "a line per job in each panel";
    } else {
      EXPECT_GE(marks.value("mark-symbol", 0), 1) << marks.dump();
      // An error bar per grid point that sets the param, and the baseline's reference line.
      EXPECT_GE(marks.value("mark-rule", 0), 2) << marks.dump();
    }
  }

  // No table widens the page at 1400 or 1000 px: each scrolls in its own box. At 1400 px the
  // grid-point table fits whole, with mean ± sd and the paired difference on at most two lines.
  for (const char* width : {"1400", "1000"}) {
    const json& layout = seen["layout"][width];
    ASSERT_TRUE(layout.is_object()) << seen["layout"].dump();
    const double window = std::stod(width);
    EXPECT_LE(layout["pageWidth"].get<double>(), window) << width << ": " << layout.dump();
    for (const auto& table : layout["tables"]) {
      EXPECT_LE(table["boxWidth"].get<double>(), window) << width << ": " << table.dump();
      if (table["name"] == "points" && std::string(width) == "1400") {
        EXPECT_LE(table["tableWidth"].get<double>(), window) << table.dump();
        EXPECT_LE(table["maxLines"].get<int>(), 2) << table.dump();
      }
    }
  }

  // The table sorted by EV, both ways; jobs without it stay last.
  for (const char* way : {"ascending", "descending"}) {
    std::vector<double> values;
    bool gap = false;
    for (const auto& v : seen["sorted"][way]) {
      if (v.is_null())
        gap = true;
      else {
        EXPECT_FALSE(gap) << way << ": a job without EV sorted before one with it";
        values.push_back(v.get<double>());
      }
    }
    EXPECT_EQ(values.size(), static_cast<size_t>(done)) << way;
    EXPECT_TRUE(sorted(values, std::string(way) == "ascending")) << way << ": " << seen["sorted"][way].dump();
  }
}

TEST(ReportInBrowser, CraftedSweepWithUnfinishedJobsRendersOffline) {
  const fs::path out = scratch() / "crafted_browser";
  write_crafted_sweep(
      out, "crafted <browser> & \"quotes\"",
      {done_job("base", {{"absorption.enabled", false}}, crafted_metrics(0.90, 10.0, 0.80, 0.20, 0.0)),
       done_job("r2", {{"absorption.ratio_threshold", 2.0}}, crafted_metrics(0.895, 9.6, 0.85, 0.05, 0.9)),
       done_job("r5", {{"absorption.ratio_threshold", 5.0}}, crafted_metrics(0.9004, 10.05, 0.802, 0.203, 0.4)),
       done_job("r20", {{"absorption.ratio_threshold", 20.0}}, crafted_metrics(0.90, 10.0, 0.80, 0.20, 0.0)),
       unfinished_job("r1", {{"absorption.ratio_threshold", 1.0}}, "failed", "loss diverged </script> at step 12", 2,
                      1),
       unfinished_job("r3", {{"absorption.ratio_threshold", 3.0}}, "preempted", "preempted", 3, 4)});
  auto run = run_command({SWEEP_BINARY, "report", out.string()}, "crafted_browser_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const json report = read_json(out / "report.json");
  const json seen = open_in_chromium(out, "crafted");
  expect_renders_offline(seen, report);
  bool warned = false, failure_listed = false;
  for (const auto& v : seen["verdicts"]) {
    warned = warned || v.get<std::string>().find("NEVER FIRED in job r20") != std::string::npos;
    failure_listed =
        failure_listed || v.get<std::string>().find("loss diverged </script> at step 12") != std::string::npos;
  }
  EXPECT_TRUE(warned) << seen["verdicts"].dump(1);
  EXPECT_TRUE(failure_listed) << "the failure reason, markup and all, shows as text: " << seen["verdicts"].dump(1);
}

// Three seeds per grid point: the knob plots draw means with error bars over the replicas, seed
// is no x-axis, and the grid-point table is there.
TEST(ReportInBrowser, ReplicatedSweepDrawsErrorBars) {
  const fs::path out = scratch() / "replicated_browser";
  std::vector<CraftedJob> jobs;
  for (int seed = 1; seed <= 3; ++seed) {
    const double noise = 0.004 * (seed - 2);
    jobs.push_back(done_job("base" + std::to_string(seed), {{"absorption.enabled", false}, {"seed", seed}},
                            crafted_metrics(0.90 + noise, 10.0, 0.80, 0.20 + noise, 0.0)));
    for (double rho : {5.0, 20.0}) {
      jobs.push_back(done_job("r" + std::to_string(int(rho)) + "_" + std::to_string(seed),
                              {{"absorption.ratio_threshold", rho}, {"seed", seed}},
                              crafted_metrics(0.90 - noise, 10.0, 0.81, 0.20 - rho / 1000 + noise, 0.5)));
    }
  }
  write_crafted_sweep(out, "replicated", jobs);
  auto run = run_command({SWEEP_BINARY, "report", out.string()}, "replicated_browser_report");
  ASSERT_EQ(run.exit_code, 0) << run.log;
  const json report = read_json(out / "report.json");
  const json seen = open_in_chromium(out, "replicated");
  expect_renders_offline(seen, report);
  for (const auto& plot : seen["plots"]) {
    if (plot["id"].get<std::string>().rfind("plot-metric-", 0) != 0) continue;
    // Two penalised points, each with an error bar (a rule and its two ticks), plus the baseline.
    EXPECT_GE(plot["marks"].value("mark-rule", 0), 3) << plot.dump();
  }
  EXPECT_NE(read_text(out / "report.html").find("<table class=\"points sortable\">"), std::string::npos);
}

TEST(ReportInBrowser, RealSmallSweepRendersOffline) {
  const fs::path out = scratch() / "quick_browser";
  auto run = run_quick(0, "quick_browser", {"--set", "train.steps=60", "--set", "train.log_every=10"});
  ASSERT_EQ(run.exit_code, 0) << run.log;
  ASSERT_TRUE(fs::exists(out / "report.html")) << "every sweep writes report.html";
  const json report = read_json(out / "report.json");
  expect_renders_offline(open_in_chromium(out, "quick"), report);
}

}  // namespace
