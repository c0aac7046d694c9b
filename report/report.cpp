// Builds report.json from job results: each job's baseline and differences to it, penalty
// activity, grid points with replica statistics, the L0 / explained-variance Pareto front of the
// points' means, totals from the "train" blocks, verdicts.
#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "report/grid_points.h"
#include "report/html.h"
#include "report/markdown.h"
#include "report/region_share.h"
#include "report/verdicts.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

bool absorption_enabled(const json& result) { return result["config"].value("absorption.enabled", false); }

// A job with a penalty on (the plan says; older plans knew only the absorption penalty).
bool penalty_enabled(const json& result) {
  return result.contains("baseline") ? !result["baseline"].get<bool>() : absorption_enabled(result);
}

// The params a penalised job shares with its baseline.
json pairing_params(const json& result) {
  if (result.contains("baseline_params")) return result["baseline_params"];
  return non_absorption_params(result.value("params", json::object()));
}

bool finite(const json& value) { return value.is_number() && std::isfinite(value.get<double>()); }

// Every metric the job and its baseline both have, as job minus baseline.
json differences(const json& metrics, const json& base) {
  json delta = json::object();
  for (const auto& [key, value] : metrics.items()) {
    if (finite(value) && base.contains(key) && finite(base[key]))
      delta[key] = value.get<double>() - base[key].get<double>();
  }
  return delta;
}

// Marks the grid points whose mean L0 (lower) and mean explained variance (higher) no other
// point beats on both.
void mark_pareto_front(json& points) {
  auto point = [](const json& p) -> std::pair<double, double> {
    const auto& m = p["metrics"];
    return {m["l0"]["mean"].get<double>(), m["explained_variance"]["mean"].get<double>()};
  };
  auto plotted = [](const json& p) {
    const auto& m = p["metrics"];
    return m.contains("l0") && m.contains("explained_variance");
  };
  // Sorted by L0 (then explained variance, highest first), a point is dominated when one of the same
  // L0 has a higher explained variance or one of a lower L0 has at least its explained variance.
  std::vector<std::pair<std::pair<double, double>, json*>> sorted;
  for (auto& p : points) {
    if (plotted(p)) sorted.push_back({point(p), &p});
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.first.first < b.first.first || (a.first.first == b.first.first && a.first.second > b.first.second);
  });
  double best_at_lower_l0 = -std::numeric_limits<double>::infinity();
  for (size_t start = 0; start < sorted.size();) {
    size_t end = start;
    while (end < sorted.size() && sorted[end].first.first == sorted[start].first.first) ++end;
    const double best_here = sorted[start].first.second;
    for (size_t k = start; k < end; ++k) {
      const double ev = sorted[k].first.second;
      (*sorted[k].second)["pareto"] = !(ev < best_here || best_at_lower_l0 >= ev);
    }
    best_at_lower_l0 = std::max(best_at_lower_l0, best_here);
    start = end;
  }
}

// What the jobs' "train" blocks and attempt counts add up to.
json summarize(const json& jobs) {
  double seconds = 0, tokens = 0;
  int64_t attempts = 0;
  std::set<std::string> devices;
  std::set<int64_t> ranks;
  for (const auto& job : jobs) {
    attempts += job["attempts"].get<int64_t>();
    const auto& train = job["train"];
    seconds += train.value("seconds", 0.0);
    tokens += train.value("tokens", 0.0);
    if (train.contains("device")) devices.insert(train["device"].get<std::string>());
    if (train.contains("ranks")) ranks.insert(train["ranks"].get<int64_t>());
  }
  return {{"train_seconds", seconds},
          {"tokens", tokens},
          {"attempts", attempts},
          {"devices", devices},
          {"ranks_per_job", ranks}};
}

}  // namespace

json build_report(const std::string& sweep_name, const std::vector<JobRecord>& records,
                  const std::vector<std::string>& extra_replica_keys, const ReportSettings& settings) {
  const std::vector<std::string> replicas = replica_keys(extra_replica_keys);
  json report = {{"sweep", sweep_name},
                 {"jobs", json::array()},
                 {"swept_keys", json::array()},
                 {"replica_keys", replicas},
                 {"settings", {{"ev_tolerance", settings.ev_tolerance}}},
                 {"relative_effect_rule", kRelativeEffectRule}};
  json counts = {{"total", records.size()}, {"done", 0}, {"failed", 0}, {"damaged", 0}, {"preempted", 0}, {"other", 0}};
  json never_fired = json::array();
  std::map<std::string, json> point_of;  // job id -> its grid point's label
  // Baselines by their params without the penalties' (the last of equal ones wins), so finding a job's
  // baseline takes one look-up, not a scan of every job.
  std::map<std::string, const json*> baselines;
  for (const auto& record : records) {
    if (!penalty_enabled(record.result)) {
      baselines[pairing_params(record.result).dump()] = &record.result;
    }
  }
  for (const auto& [r, curve] : records) {
    const json params = r.value("params", json::object());  // a temporary would dangle in the loop
    for (const auto& [k, v] : params.items()) {
      auto& keys = report["swept_keys"];
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    auto status = r.value("status", "unknown");
    auto& count = counts.contains(status) && status != "total" ? counts[status] : counts["other"];
    count = count.get<int>() + 1;
  }
  for (const auto& [r, curve] : records) {
    json job = {{"id", r["id"]},
                {"status", r.value("status", "unknown")},
                {"params", r.value("params", json::object())},
                {"baseline", !penalty_enabled(r)},
                {"baseline_params", pairing_params(r)},
                {"metrics", r.value("metrics", json::object())},
                {"train", r.value("train", json::object())},
                // state.json's; without one, a finished result ran once and a pending job never
                {"attempts", r.value("attempts", r.value("status", "") == "done" ? 1 : 0)},
                {"config", r["config"]},
                {"curve", curve}};
    if (r.contains("error")) job["error"] = r["error"];
    if (r.contains("absorption_coverage")) job["absorption_coverage"] = r["absorption_coverage"];
    if (r.contains("probe_absorption")) job["probe_absorption"] = r["probe_absorption"];
    for (const char* key : {"label", "label_keys"}) {
      if (r.contains(key)) job[key] = r[key];
    }
    // The baseline of a penalised job: the job with every penalty off and the same other params.
    if (penalty_enabled(r)) {
      auto b = baselines.find(pairing_params(r).dump());
      if (b != baselines.end()) {
        job["baseline_id"] = (*b->second)["id"];
        job["delta"] = differences(job["metrics"], b->second->value("metrics", json::object()));
        // The share of matched pairs in the flagged region, the baseline's judged at this job's thresholds.
        if (job["delta"].contains("gt_pairs_in_region") && both_record_coverage(r, *b->second)) {
          const auto before = baseline_share_at_job_thresholds(r, *b->second);
          if (before) job["delta"]["gt_pairs_in_region"] = job["metrics"]["gt_pairs_in_region"].get<double>() - *before;
          else job["delta"].erase("gt_pairs_in_region");
        }
      }
    }
    if (absorption_enabled(r)) {  // the absorption penalty's own check: did it ever fire?
      bool fired = job["metrics"].value("absorption_active_fraction", 0.0) > 0.0;
      job["absorption_fired"] = fired;
      if (job["status"] == "done" && !fired) never_fired.push_back(r["id"]);
    }
    report["jobs"].push_back(job);
  }
  report["points"] = grid_points(report["jobs"], replicas);
  mark_pareto_front(report["points"]);
  for (const auto& point : report["points"]) {
    for (const auto& id : point["jobs"]) point_of[id.get<std::string>()] = point["label"];
  }
  for (auto& job : report["jobs"]) job["point"] = point_of[job["id"].get<std::string>()];
  report["counts"] = counts;
  report["summary"] = summarize(report["jobs"]);
  report["absorption_never_fired"] = never_fired;
  report["verdicts"] = verdicts(report);
  return report;
}

void write_report(const std::filesystem::path& out_dir, const json& report) {
  write_files_atomic({{out_dir / "report.json", report.dump(2) + "\n"},
                      {out_dir / "report.md", render_markdown(report)},
                      {out_dir / "report.html", render_html(report)}});
}

}  // namespace sweep::launcher
