// Computes the verdicts of report.json from its jobs: equality to the baseline within noise
// (seed replicas' spread, else fixed tolerances), the best job per objective, unfinished jobs.
#include "report/verdicts.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace sweep::launcher {

namespace {

using nlohmann::json;

// Noise tolerances used when a baseline has no seed replicas: |job - baseline| <= absolute +
// relative * |baseline|.
struct FixedTolerance {
  const char* metric;
  double absolute;
  double relative;
};
const FixedTolerance kFixedTolerances[] = {
    {"explained_variance", 0.001, 0.0}, {"l0", 0.0, 0.01}, {"gt_mcc", 0.005, 0.0}, {"gt_absorption", 0.005, 0.0}};

// "explained variance within 0.01 of the baseline": at most this much below it (the rules say so).
constexpr double kEvSlack = 0.01;
// "at the baseline's L0": within this fraction of it.
constexpr double kL0Slack = 0.10;

const char* const kSeedKeys[] = {"seed", "data.seed"};

enum class Near { Ev, L0 };  // which baseline constraint an objective keeps

struct Objective {
  const char* name;
  const char* metric;
  bool lower_is_better;
  Near near;
  const char* what;  // the rule's first half; the constraint follows from `near`
};

const Objective kObjectives[] = {
    {"lowest_gt_absorption", "gt_absorption", true, Near::Ev, "lowest gt_absorption"},
    {"best_explained_variance_at_baseline_l0", "explained_variance", false, Near::L0, "best explained variance"},
    {"best_gt_mcc", "gt_mcc", false, Near::Ev, "best gt_mcc"},
    {"lowest_l0", "l0", true, Near::Ev, "lowest L0"},
};

std::string rule(const Objective& o) {
  if (o.near == Near::Ev)
    return fmt::format("{} with explained variance at most {:g} below its baseline's", o.what, kEvSlack);
  return fmt::format("{} with L0 within {:g}% of its baseline's", o.what, 100 * kL0Slack);
}

std::optional<double> metric(const json& job, const std::string& key) {
  const auto& m = job["metrics"];
  if (!m.contains(key) || !m[key].is_number()) return std::nullopt;
  double v = m[key].get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

bool done(const json& job) { return job["status"] == "done"; }

json without_seeds(json params) {
  for (const char* key : kSeedKeys) params.erase(key);
  return params;
}

class Verdicts {
 public:
  explicit Verdicts(const json& report) : jobs_(report["jobs"]) {
    for (const auto& job : jobs_) {
      by_id_[job["id"].get<std::string>()] = &job;
      if (done(job) && job["baseline"].get<bool>()) replicas_[without_seeds(job["params"]).dump()].push_back(&job);
    }
  }

  // The done baseline a job is compared with: itself for a baseline, else its baseline_id.
  const json* baseline_of(const json& job) const {
    if (job["baseline"].get<bool>()) return &job;
    if (!job.contains("baseline_id")) return nullptr;
    const json* base = by_id_.at(job["baseline_id"].get<std::string>());
    return done(*base) ? base : nullptr;
  }

  // Per metric, how far a job may be from `base` and still count as equal; and where that came from.
  json tolerances(const json& base) const {
    const auto found = replicas_.find(without_seeds(base["params"]).dump());
    const std::vector<const json*> replicas = found == replicas_.end() ? std::vector<const json*>{} : found->second;
    json out = {{"from", replicas.size() >= 2 ? "seed replicas" : "fixed"},
                {"replicas", json::array()},
                {"metrics", json::object()}};
    for (const auto* r : replicas) out["replicas"].push_back((*r)["id"]);
    for (const auto& t : kFixedTolerances) {
      auto b = metric(base, t.metric);
      if (!b) continue;
      if (replicas.size() < 2) {
        out["metrics"][t.metric] = t.absolute + t.relative * std::abs(*b);
        continue;
      }
      std::vector<double> values;
      for (const auto* r : replicas) {
        if (auto v = metric(*r, t.metric)) values.push_back(*v);
      }
      auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      out["metrics"][t.metric] = *hi - *lo;
    }
    return out;
  }

  json equal_to_baseline() const {
    json fixed = json::object();
    for (const auto& t : kFixedTolerances) fixed[t.metric] = {{"absolute", t.absolute}, {"relative", t.relative}};
    json out = {{"fixed_tolerances", fixed}, {"compared", 0}, {"jobs", json::array()}};
    for (const auto& job : jobs_) {
      const json* base = baseline_of(job);
      if (!done(job) || job["baseline"].get<bool>() || !base) continue;
      json tol = tolerances(*base);
      json diff = json::object();
      bool equal = true;
      for (const auto& [key, allowed] : tol["metrics"].items()) {
        auto v = metric(job, key);
        if (!v) continue;
        double d = *v - *metric(*base, key);
        diff[key] = d;
        equal = equal && std::abs(d) <= allowed.get<double>();
      }
      if (diff.empty()) continue;
      out["compared"] = out["compared"].get<int>() + 1;
      if (!equal) continue;
      out["jobs"].push_back(
          {{"id", job["id"]}, {"baseline_id", (*base)["id"]}, {"differences", diff}, {"tolerance", tol}});
    }
    return out;
  }

  bool keeps(const Objective& o, const json& job, const json& base) const {
    if (o.near == Near::Ev) {
      auto ev = metric(job, "explained_variance"), ev_base = metric(base, "explained_variance");
      return ev && ev_base && *ev >= *ev_base - kEvSlack;
    }
    auto l0 = metric(job, "l0"), l0_base = metric(base, "l0");
    return l0 && l0_base && std::abs(*l0 - *l0_base) <= kL0Slack * *l0_base;
  }

  // Objectives whose metric no done job has (gt_* without ground truth) are left out.
  json best() const {
    json out = json::array();
    for (const auto& o : kObjectives) {
      bool measured =
          std::any_of(jobs_.begin(), jobs_.end(), [&](const json& j) { return done(j) && metric(j, o.metric); });
      if (!measured) continue;
      json entry = {{"objective", o.name}, {"metric", o.metric}, {"rule", rule(o)}, {"id", nullptr}, {"candidates", 0}};
      std::optional<double> best_value;
      for (const auto& job : jobs_) {
        const json* base = baseline_of(job);
        auto value = metric(job, o.metric);
        if (!done(job) || !base || !value || !keeps(o, job, *base)) continue;
        entry["candidates"] = entry["candidates"].get<int>() + 1;
        if (best_value && (o.lower_is_better ? *value >= *best_value : *value <= *best_value)) continue;
        best_value = value;
        entry["id"] = job["id"];
        entry["value"] = *value;
        entry["baseline_id"] = (*base)["id"];
        entry["baseline_value"] = *metric(*base, o.metric);
      }
      out.push_back(entry);
    }
    return out;
  }

  json unfinished() const {
    json out = json::array();
    for (const auto& job : jobs_) {
      if (done(job)) continue;
      out.push_back({{"id", job["id"]},
                     {"status", job["status"]},
                     {"attempts", job["attempts"]},
                     {"reason", job.value("error", job["status"].get<std::string>())}});
    }
    return out;
  }

 private:
  const json& jobs_;
  std::map<std::string, const json*> by_id_;
  std::map<std::string, std::vector<const json*>> replicas_;  // done baselines by their params without seeds
};

}  // namespace

json verdicts(const json& report) {
  Verdicts v(report);
  return {{"absorption_never_fired", report["absorption_never_fired"]},
          {"equal_to_baseline", v.equal_to_baseline()},
          {"best", v.best()},
          {"not_finished", v.unfinished()}};
}

}  // namespace sweep::launcher
