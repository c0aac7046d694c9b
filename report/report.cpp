// Builds report.json from job results: each job's baseline and differences to it, penalty
// activity, the L0 / explained-variance Pareto front, totals from the "train" blocks, verdicts.
#include "report/report.h"

#include <algorithm>
#include <cmath>
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
  for (auto& job : jobs) {
    if (!plotted(job)) continue;
    auto [l0, ev] = point(job);
    bool dominated = std::any_of(jobs.begin(), jobs.end(), [&, l0 = l0, ev = ev](const json& other) {
      if (!plotted(other)) return false;
      auto [l0_other, ev_other] = point(other);
      return l0_other <= l0 && ev_other >= ev && (l0_other < l0 || ev_other > ev);
    });
    job["pareto"] = !dominated;
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
  json counts = {{"total", records.size()}, {"done", 0}, {"failed", 0}, {"preempted", 0}, {"other", 0}};
  json never_fired = json::array();
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
      for (const auto& [b, b_curve] : records) {
        if (!penalty_enabled(b) && non_absorption_params(b["params"]) == non_absorption_params(r["params"])) {
          job["baseline_id"] = b["id"];
          job["delta"] = differences(job["metrics"], b.value("metrics", json::object()));
        }
      }
      bool fired = job["metrics"].value("absorb_active_fraction", 0.0) > 0.0;
      job["penalty_fired"] = fired;
      if (job["status"] == "done" && !fired) never_fired.push_back(r["id"]);
    }
    report["jobs"].push_back(job);
  }
  mark_pareto_front(report["jobs"]);
  report["counts"] = counts;
  report["summary"] = summarize(report["jobs"]);
  report["penalty_never_fired"] = never_fired;
  report["verdicts"] = verdicts(report);
  return report;
}

void write_report(const std::filesystem::path& out_dir, const json& report) {
  write_json_atomic(out_dir / "report.json", report);
  write_file_atomic(out_dir / "report.md", render_markdown(report));
  write_file_atomic(out_dir / "report.html", render_html(report));
}

}  // namespace sweep::launcher
