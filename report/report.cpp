// Builds report.json from job results: each job's baseline and differences to it, penalty
// activity, the L0 / explained-variance Pareto front, totals from the "train" blocks, verdicts.
#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "report/html.h"
#include "report/markdown.h"
#include "report/verdicts.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

bool penalty_enabled(const json& result) { return result["config"].value("absorption.enabled", false); }

// The params of a job without its absorption.* keys: jobs sharing them share a baseline.
json non_absorption_params(const json& params) {
  json out = json::object();
  for (const auto& [k, v] : params.items()) {
    if (k.rfind("absorption.", 0) != 0) out[k] = v;
  }
  return out;
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

// Marks the done jobs that no other done job beats on both L0 (lower) and explained variance (higher).
void mark_pareto_front(json& jobs) {
  auto point = [](const json& job) -> std::pair<double, double> {
    const auto& m = job["metrics"];
    return {m["l0"].get<double>(), m["explained_variance"].get<double>()};
  };
  auto plotted = [](const json& job) {
    const auto& m = job["metrics"];
    return job["status"] == "done" && finite(m.value("l0", json())) && finite(m.value("explained_variance", json()));
  };
  // Sorted by L0 (then explained variance, highest first), a job is dominated when a job of the same
  // L0 has a higher explained variance or one of a lower L0 has at least its explained variance.
  std::vector<std::pair<std::pair<double, double>, json*>> points;
  for (auto& job : jobs) {
    if (plotted(job)) points.push_back({point(job), &job});
  }
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) {
    return a.first.first < b.first.first || (a.first.first == b.first.first && a.first.second > b.first.second);
  });
  double best_at_lower_l0 = -std::numeric_limits<double>::infinity();
  for (size_t start = 0; start < points.size();) {
    size_t end = start;
    while (end < points.size() && points[end].first.first == points[start].first.first) ++end;
    const double best_here = points[start].first.second;
    for (size_t k = start; k < end; ++k) {
      const double ev = points[k].first.second;
      (*points[k].second)["pareto"] = !(ev < best_here || best_at_lower_l0 >= ev);
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

json build_report(const std::string& sweep_name, const std::vector<JobRecord>& records) {
  json report = {{"sweep", sweep_name}, {"jobs", json::array()}, {"swept_keys", json::array()}};
  json counts = {{"total", records.size()}, {"done", 0}, {"failed", 0}, {"damaged", 0}, {"preempted", 0}, {"other", 0}};
  json never_fired = json::array();
  // Baselines by their non-absorption params (the last of equal ones wins), so finding a job's
  // baseline takes one look-up, not a scan of every job.
  std::map<std::string, const json*> baselines;
  for (const auto& record : records) {
    if (!penalty_enabled(record.result)) {
      baselines[non_absorption_params(record.result.value("params", json::object())).dump()] = &record.result;
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
                {"metrics", r.value("metrics", json::object())},
                {"train", r.value("train", json::object())},
                {"attempts", r.value("attempts", 1)},
                {"config", r["config"]},
                {"curve", curve}};
    if (r.contains("error")) job["error"] = r["error"];
    // The baseline of a penalised job: the unpenalised job with the same non-absorption params.
    if (penalty_enabled(r)) {
      auto b = baselines.find(non_absorption_params(r.value("params", json::object())).dump());
      if (b != baselines.end()) {
        job["baseline_id"] = (*b->second)["id"];
        job["delta"] = differences(job["metrics"], b->second->value("metrics", json::object()));
      }
      bool fired = job["metrics"].value("absorption_active_fraction", 0.0) > 0.0;
      job["absorption_fired"] = fired;
      if (job["status"] == "done" && !fired) never_fired.push_back(r["id"]);
    }
    report["jobs"].push_back(job);
  }
  mark_pareto_front(report["jobs"]);
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
