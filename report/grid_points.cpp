// Groups the report's jobs into grid points and computes their replica statistics.
#include "report/grid_points.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "report/format.h"
#include "report/region_share.h"
#include "report/statistics.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

const char* const kSeedKeys[] = {"seed", "data.seed"};

bool finite(const json& value) { return value.is_number() && std::isfinite(value.get<double>()); }

json summary_json(const Summary& s) {
  json out = {{"n", s.n}, {"mean", s.mean}, {"sd", s.sd}};
  if (s.ci_low) {
    out["ci_low"] = *s.ci_low;
    out["ci_high"] = *s.ci_high;
  }
  return out;
}

// A point under construction: its done jobs by their replica values.
struct Point {
  json entry;
  std::map<std::string, const json*> done_by_replica;
};

class Grouping {
 public:
  Grouping(const json& jobs, const std::vector<std::string>& keys) : keys_(keys.begin(), keys.end()) {
    for (const auto& job : jobs) {
      auto [params, replica] = split(job["params"]);
      const std::string key = params.dump() + (job["baseline"].get<bool>() ? "|baseline" : "");
      auto [it, fresh] = index_.try_emplace(key, points_.size());
      if (fresh) {
        json label_job = {{"params", params}, {"baseline", job["baseline"]}};
        for (const char* k : {"label", "label_keys"}) {
          if (job.contains(k)) label_job[k] = job[k];
        }
        points_.push_back({{{"label", job_label(label_job)},
                            {"params", params},
                            {"baseline", job["baseline"]},
                            {"baseline_params", split(job.value("baseline_params", non_absorption_params(job["params"]))).first},
                            {"absorption", job["config"].is_object() && job["config"].value("absorption.enabled", false)},
                            {"jobs", json::array()}},
                           {}});
      }
      Point& point = points_[it->second];
      point.entry["jobs"].push_back(job["id"]);
      if (job["status"] == "done") point.done_by_replica[replica.dump()] = &job;
    }
  }

  json finish() {
    std::map<std::string, size_t> baselines;  // params without the penalties' -> baseline point
    for (size_t i = 0; i < points_.size(); ++i) {
      if (points_[i].entry["baseline"].get<bool>()) baselines[points_[i].entry["baseline_params"].dump()] = i;
    }
    for (auto& point : points_) {
      point.entry["n"] = point.done_by_replica.size();
      point.entry["metrics"] = metric_summaries(point);
      if (!point.entry["baseline"].get<bool>()) {
        auto b = baselines.find(point.entry["baseline_params"].dump());
        if (b != baselines.end()) {
          point.entry["baseline_point"] = points_[b->second].entry["label"];
          point.entry["paired"] = paired_differences(point, points_[b->second]);
        }
      }
    }
    json out = json::array();
    for (auto& point : points_) out.push_back(std::move(point.entry));
    return out;
  }

 private:
  // A job's params split into the point's (replica keys removed) and its replica values.
  std::pair<json, json> split(const json& params) const {
    json point = json::object(), replica = json::object();
    for (const auto& [k, v] : params.items()) (keys_.count(k) ? replica : point)[k] = v;
    return {point, replica};
  }

  static json metric_summaries(const Point& point) {
    std::map<std::string, std::vector<double>> values;
    for (const auto& [replica, job] : point.done_by_replica) {
      for (const auto& [k, v] : (*job)["metrics"].items()) {
        if (finite(v)) values[k].push_back(v.get<double>());
      }
    }
    json out = json::object();
    for (const auto& [k, v] : values) {
      json s = summary_json(summarize_values(v));
      s.erase("ci_low");
      s.erase("ci_high");
      out[k] = s;
    }
    return out;
  }

  // A baseline job's value of `metric` to compare `job`'s with: its metric, except the share of
  // matched pairs in the flagged region, judged at the penalised job's thresholds (a baseline's own
  // share is at the defaults, which the penalised job may not use).
  static std::optional<double> baseline_value(const json& job, const json& base, const std::string& metric) {
    if (metric == "gt_pairs_in_region" && both_record_coverage(job, base)) return baseline_share_at_job_thresholds(job, base);
    const json& m = base["metrics"];
    if (!m.contains(metric) || !finite(m[metric])) return std::nullopt;
    return m[metric].get<double>();
  }

  // Per metric, job minus baseline over the replicas both finished, and that difference relative
  // to the baseline's mean over the same replicas (kRelativeEffectRule).
  static json paired_differences(const Point& point, const Point& base) {
    std::map<std::string, std::vector<double>> diffs, bases;
    for (const auto& [replica, job] : point.done_by_replica) {
      auto b = base.done_by_replica.find(replica);
      if (b == base.done_by_replica.end()) continue;
      for (const auto& [k, v] : (*job)["metrics"].items()) {
        const auto base_value = baseline_value(*job, *b->second, k);
        if (!finite(v) || !base_value) continue;
        diffs[k].push_back(v.get<double>() - *base_value);
        bases[k].push_back(*base_value);
      }
    }
    json out = json::object();
    for (const auto& [k, d] : diffs) {
      const Summary s = summarize_values(d);
      out[k] = summary_json(s);
      out[k]["distinguishable"] = s.excludes_zero();
      const double base_mean = summarize_values(bases[k]).mean;
      if (std::abs(base_mean) > 0 && std::isfinite(base_mean)) {
        const double scale = 1.0 / std::abs(base_mean);
        json relative = {{"mean", s.mean * scale}, {"baseline_mean", base_mean}};
        if (s.ci_low) {
          relative["ci_low"] = *s.ci_low * scale;
          relative["ci_high"] = *s.ci_high * scale;
        }
        out[k]["relative"] = relative;
      }
    }
    return out;
  }

  std::set<std::string> keys_;
  std::vector<Point> points_;
  std::map<std::string, size_t> index_;
};

}  // namespace

const char* const kRelativeEffectRule =
    "relative effect: the paired difference (point minus baseline, replica by replica) divided by the absolute "
    "value of the baseline's mean over the same replicas; its interval is the difference's 95% t interval "
    "divided the same way";

std::vector<std::string> replica_keys(const std::vector<std::string>& extra) {
  std::vector<std::string> keys(std::begin(kSeedKeys), std::end(kSeedKeys));
  for (const auto& k : extra) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  return keys;
}

json non_absorption_params(const json& params) {
  json out = json::object();
  for (const auto& [k, v] : params.items()) {
    if (k.rfind("absorption.", 0) != 0) out[k] = v;
  }
  return out;
}

json grid_points(const json& jobs, const std::vector<std::string>& replica_keys) {
  return Grouping(jobs, replica_keys).finish();
}

}  // namespace sweep::launcher
