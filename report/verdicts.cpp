// Computes the verdicts of report.json from its grid points. With replicas, a difference counts
// only when the 95% t interval of the paired difference (point minus baseline, paired by replica)
// excludes 0; a point with one replica is compared with fixed tolerances and said to be
// indistinguishable from seed noise. The best point per objective is chosen on means.
#include "report/verdicts.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "report/region_share.h"

namespace sweep::launcher {

namespace {

using nlohmann::json;

// The metrics compared with the baseline, and the tolerances used for a point with one replica:
// |point - baseline| <= absolute + relative * |baseline|.
struct FixedTolerance {
  const char* metric;
  double absolute;
  double relative;
};
const FixedTolerance kFixedTolerances[] = {
    {"explained_variance", 0.001, 0.0}, {"l0", 0.0, 0.01},          {"gt_mcc", 0.005, 0.0},
    {"gt_absorption", 0.005, 0.0},       {"probe_absorption_fraction", 0.005, 0.0}, {"probe_full_absorption", 0.005, 0.0}};

// "at the baseline's L0": within this fraction of it.
constexpr double kL0Slack = 0.10;
// A flagged region that holds less than this share of the matched parent-child pairs holds few.
constexpr double kFewInRegion = 0.5;

enum class Near { Ev, L0 };  // which baseline constraint an objective keeps

struct Objective {
  const char* name;
  const char* metric;
  bool lower_is_better;
  Near near;
  const char* what;  // the rule's first half; the constraint follows from `near`
  bool ranked;       // every qualifying point ranked, not just the best (the absorption metrics: methods compared)
};

const Objective kObjectives[] = {
    {"lowest_gt_absorption", "gt_absorption", true, Near::Ev, "lowest gt_absorption", true},
    {"lowest_probe_absorption_fraction", "probe_absorption_fraction", true, Near::Ev, "lowest probe_absorption_fraction", true},
    {"best_explained_variance_at_baseline_l0", "explained_variance", false, Near::L0, "best explained variance", false},
    {"best_gt_mcc", "gt_mcc", false, Near::Ev, "best gt_mcc", false},
    {"lowest_l0", "l0", true, Near::Ev, "lowest L0", false},
};

// The metrics the headline and the trade-off front judge: a job's absorption, measured on ground
// truth or with probes.
const char* const kAbsorptionMetrics[] = {"gt_absorption", "probe_absorption_fraction"};

std::string rule(const Objective& o, double ev_tolerance) {
  if (o.near == Near::Ev)
    return fmt::format("{} (mean over replicas) with mean explained variance at most {:g} below its baseline's "
                       "(report.ev_tolerance)",
                       o.what, ev_tolerance);
  return fmt::format("{} (mean over replicas) with mean L0 within {:g}% of its baseline's", o.what, 100 * kL0Slack);
}

// A point's mean of `key` over its finished replicas.
std::optional<double> mean(const json& point, const std::string& key) {
  const auto& m = point["metrics"];
  if (!m.contains(key)) return std::nullopt;
  return m[key]["mean"].get<double>();
}

// The paired difference of `key` to the baseline, when the point has one.
const json* paired(const json& point, const std::string& key) {
  if (!point.contains("paired") || !point["paired"].contains(key)) return nullptr;
  return &point["paired"][key];
}

bool replicated(const json* difference) { return difference && (*difference)["n"].get<size_t>() >= 2; }

bool measured(const json& point) { return point["n"].get<size_t>() > 0; }

class Verdicts {
 public:
  explicit Verdicts(const json& report)
      : report_(report),
        points_(report["points"]),
        ev_tolerance_(report.value("settings", json::object()).value("ev_tolerance", kDefaultEvTolerance)) {
    for (const auto& point : points_) by_label_[point["label"].get<std::string>()] = &point;
    for (const auto& job : report["jobs"]) job_by_id_[job["id"].get<std::string>()] = &job;
  }

  // The measured baseline point a point is compared with: itself for a baseline.
  const json* baseline_of(const json& point) const {
    if (point["baseline"].get<bool>()) return &point;
    if (!point.contains("baseline_point")) return nullptr;
    const json* base = by_label_.at(point["baseline_point"].get<std::string>());
    return measured(*base) ? base : nullptr;
  }

  json replication() const {
    size_t most = 0, single = 0, planned = 0;
    for (const auto& point : points_) {
      planned = std::max(planned, point["jobs"].size());
      if (!measured(point)) continue;
      const size_t n = point["n"];
      most = std::max(most, n);
      single += n == 1;
    }
    int64_t seed = 0;
    if (!report_["jobs"].empty()) seed = report_["jobs"][0]["config"].value("seed", int64_t{0});
    return {{"replica_keys", report_["replica_keys"]},
            {"max_n", most},
            {"single_replica_points", single},
            {"replicated", most >= 2},
            {"planned_replicas", planned},  // the most replicas a point has in the plan, finished or not
            {"hint", fmt::format("--set 'grid.seed=[{}, {}, {}]'", seed, seed + 1, seed + 2)}};
  }

  // For every penalised point with paired replicas: its difference to the baseline per metric.
  json effects() const {
    json out = json::array();
    for (const auto& point : points_) {
      const json* base = baseline_of(point);
      if (point["baseline"].get<bool>() || !base) continue;
      json metrics = json::object();
      size_t n = 0;
      for (const auto& t : kFixedTolerances) {
        const json* d = paired(point, t.metric);
        if (!replicated(d)) continue;
        metrics[t.metric] = *d;
        metrics[t.metric]["baseline_mean"] = *mean(*base, t.metric);
        n = std::max(n, (*d)["n"].get<size_t>());
      }
      if (metrics.empty()) continue;
      out.push_back({{"point", point["label"]}, {"baseline_point", (*base)["label"]}, {"n", n}, {"metrics", metrics}});
    }
    return out;
  }

  // Points whose every compared metric is within noise of the baseline's: the paired interval
  // holds 0 where there are replicas, else the fixed tolerance holds the difference.
  json equal_to_baseline() const {
    json fixed = json::object();
    for (const auto& t : kFixedTolerances) fixed[t.metric] = {{"absolute", t.absolute}, {"relative", t.relative}};
    json out = {{"fixed_tolerances", fixed}, {"compared", 0}, {"points", json::array()}};
    for (const auto& point : points_) {
      const json* base = baseline_of(point);
      if (point["baseline"].get<bool>() || !base || !measured(point)) continue;
      json diff = json::object(), allowed = json::object(), intervals = json::object();
      bool equal = true, with_replicas = false;
      for (const auto& t : kFixedTolerances) {
        const json* d = paired(point, t.metric);
        if (replicated(d)) {
          with_replicas = true;
          diff[t.metric] = (*d)["mean"];
          intervals[t.metric] = {(*d)["ci_low"], (*d)["ci_high"]};
          equal = equal && !(*d)["distinguishable"].get<bool>();
          continue;
        }
        auto v = mean(point, t.metric), b = mean(*base, t.metric);
        if (!v || !b) continue;
        diff[t.metric] = *v - *b;
        allowed[t.metric] = t.absolute + t.relative * std::abs(*b);
        equal = equal && std::abs(*v - *b) <= allowed[t.metric].get<double>();
      }
      if (diff.empty()) continue;
      out["compared"] = out["compared"].get<int>() + 1;
      if (!equal) continue;
      json entry = {{"point", point["label"]},
                    {"baseline_point", (*base)["label"]},
                    {"from", with_replicas ? "paired replicas" : "fixed"},
                    {"differences", diff}};
      if (!intervals.empty()) entry["intervals"] = intervals;
      if (!allowed.empty()) entry["tolerances"] = allowed;
      out["points"].push_back(entry);
    }
    return out;
  }

  bool keeps(const Objective& o, const json& point, const json& base) const {
    if (o.near == Near::Ev) {
      auto ev = mean(point, "explained_variance"), ev_base = mean(base, "explained_variance");
      return ev && ev_base && *ev >= *ev_base - ev_tolerance_;
    }
    auto l0 = mean(point, "l0"), l0_base = mean(base, "l0");
    return l0 && l0_base && std::abs(*l0 - *l0_base) <= kL0Slack * *l0_base;
  }

  // Objectives whose metric no point has (gt_* without ground truth) are left out.
  json best() const {
    json out = json::array();
    for (const auto& o : kObjectives) {
      if (std::none_of(points_.begin(), points_.end(), [&](const json& p) { return mean(p, o.metric).has_value(); }))
        continue;
      json entry = {{"objective", o.name}, {"metric", o.metric}, {"rule", rule(o, ev_tolerance_)}, {"point", nullptr}, {"candidates", 0}};
      json ranking = json::array(), left_out = json::array();
      std::optional<double> best_value;
      for (const auto& point : points_) {
        const json* base = baseline_of(point);
        auto value = mean(point, o.metric);
        if (!base || !value) continue;
        if (!keeps(o, point, *base)) {
          auto ev = mean(point, "explained_variance"), ev_base = mean(*base, "explained_variance");
          if (ev && ev_base) left_out.push_back({{"point", point["label"]}, {"ev_change", *ev - *ev_base}});
          continue;
        }
        entry["candidates"] = entry["candidates"].get<int>() + 1;
        ranking.push_back({{"point", point["label"]}, {"n", point["n"]}, {"mean", *value},
                           {"sd", point["metrics"][o.metric]["sd"]}});
        if (best_value && (o.lower_is_better ? *value >= *best_value : *value <= *best_value)) continue;
        best_value = value;
        entry["point"] = point["label"];
        entry["n"] = point["n"];
        entry["value"] = *value;
        entry["baseline_point"] = (*base)["label"];
        entry["baseline_value"] = *mean(*base, o.metric);
        const json* d = paired(point, o.metric);
        entry["difference"] = d ? *d : json();
        // null: the baseline itself, or too few replicas to tell.
        entry["distinguishable"] = replicated(d) ? json((*d)["distinguishable"]) : json();
      }
      if (o.ranked) {  // best first; the points left out by the explained-variance bound after
        std::stable_sort(ranking.begin(), ranking.end(), [&](const json& a, const json& b) {
          return o.lower_is_better ? a["mean"].get<double>() < b["mean"].get<double>()
                                   : a["mean"].get<double>() > b["mean"].get<double>();
        });
        entry["ranking"] = ranking;
        entry["left_out"] = left_out;
        entry["front"] = front(o);
      }
      out.push_back(entry);
    }
    return out;
  }

  // The trade-off front of an objective's metric against explained variance: the points whose
  // means no other point beats on both (the metric better, explained variance higher), best metric
  // first. No tolerance decides it: a researcher chooses along it.
  json front(const Objective& o) const {
    std::vector<std::pair<double, double>> means;  // (metric, ev) per candidate
    std::vector<const json*> candidates;
    for (const auto& point : points_) {
      auto value = mean(point, o.metric), ev = mean(point, "explained_variance");
      if (!value || !ev) continue;
      means.push_back({o.lower_is_better ? *value : -*value, *ev});
      candidates.push_back(&point);
    }
    json out = json::array();
    for (size_t i = 0; i < means.size(); ++i) {
      bool dominated = false;
      for (size_t j = 0; j < means.size() && !dominated; ++j) {
        dominated = j != i && means[j].first <= means[i].first && means[j].second >= means[i].second &&
                    (means[j].first < means[i].first || means[j].second > means[i].second);
      }
      if (dominated) continue;
      const json& point = *candidates[i];
      out.push_back({{"point", point["label"]}, {"n", point["n"]}, {"baseline", point["baseline"]},
                     {"mean", *mean(point, o.metric)}, {"explained_variance", means[i].second}});
    }
    std::stable_sort(out.begin(), out.end(), [&](const json& a, const json& b) {
      return o.lower_is_better ? a["mean"].get<double>() < b["mean"].get<double>()
                               : a["mean"].get<double>() > b["mean"].get<double>();
    });
    return out;
  }

  // For each penalised point and absorption metric it was measured with: the relative effect
  // with its interval and the cost in explained variance, sorted by effect (largest reduction
  // first), one metric after the other.
  json headline() const {
    json out = json::array();
    for (const char* metric : kAbsorptionMetrics) {
      json lines = json::array();
      for (const auto& point : points_) {
        const json* d = paired(point, metric);
        if (point["baseline"].get<bool>() || !baseline_of(point) || !d) continue;
        json line = {{"point", point["label"]}, {"metric", metric}, {"n", (*d)["n"]}, {"difference", *d}};
        line["difference"].erase("relative");
        line["relative"] = d->value("relative", json());
        line["distinguishable"] = replicated(d) ? json((*d)["distinguishable"]) : json();
        if (const json* ev = paired(point, "explained_variance")) {
          line["explained_variance"] = {{"mean", (*ev)["mean"]}, {"relative", ev->value("relative", json())}};
          for (const char* bound : {"ci_low", "ci_high"}) {
            if (ev->contains(bound)) line["explained_variance"][bound] = (*ev)[bound];
          }
        }
        lines.push_back(line);
      }
      auto effect = [](const json& line) {
        return line["relative"].is_object() ? line["relative"]["mean"].get<double>() : line["difference"]["mean"].get<double>();
      };
      std::stable_sort(lines.begin(), lines.end(), [&](const json& a, const json& b) { return effect(a) < effect(b); });
      out.insert(out.end(), lines.begin(), lines.end());
    }
    return out;
  }

  // Whether the absorption penalty's flagged region can reach the pairs that absorb, per penalised
  // point: judged before the penalty acts, on its baseline's SAEs at the point's tau and rho (the
  // point's own share at the end of training is what the penalty did: it pushes pairs out). A
  // point without a baseline is judged on its own share, and says so.
  json coverage() const {
    json out = json::array();
    for (const auto& point : points_) {
      if (point["baseline"].get<bool>() || !point.value("absorption", false)) continue;
      const auto measured = coverages(point);
      if (measured.empty()) continue;
      const double tau = (*measured[0])["tau"], rho = (*measured[0])["rho"];
      const json after = share_in_region_of(point, tau, rho);
      if (after.is_null()) continue;
      const json* base = baseline_of(point);
      const json before = base ? share_in_region_of(*base, tau, rho) : json();
      const bool on_baseline = before.is_number();
      const double judged = on_baseline ? before.get<double>() : after.get<double>();
      out.push_back({{"point", point["label"]}, {"n", point["n"]}, {"tau", tau}, {"rho", rho},
                     {"share", after}, {"baseline_share", before},
                     {"baseline_point", base ? (*base)["label"] : json()},
                     {"judged_on", on_baseline ? "baseline" : "point"}, {"few", judged < kFewInRegion}});
    }
    return {{"few_below", kFewInRegion}, {"points", out}};
  }

  // Jobs that ran and did not finish (a job never started is pending, not failed: not_started()).
  static bool not_started(const json& job) { return job["status"] == "pending" && job["attempts"].get<int64_t>() == 0; }

  json pending() const {
    json out = json::array();
    for (const auto& job : report_["jobs"]) {
      if (not_started(job)) out.push_back(job["id"]);
    }
    return out;
  }

  json unfinished() const {
    json out = json::array();
    for (const auto& job : report_["jobs"]) {
      if (job["status"] == "done" || not_started(job)) continue;
      out.push_back({{"id", job["id"]},
                     {"status", job["status"]},
                     {"attempts", job["attempts"]},
                     {"reason", job.value("error", job["status"].get<std::string>())}});
    }
    return out;
  }

 private:
  // The coverages of a point's finished jobs, in plan order.
  std::vector<const json*> coverages(const json& point) const {
    std::vector<const json*> out;
    for (const auto& id : point["jobs"]) {
      const json& job = *job_by_id_.at(id.get<std::string>());
      if (job["status"] == "done" && job.contains("absorption_coverage")) out.push_back(&job["absorption_coverage"]);
    }
    return out;
  }

  // A point's mean share of matched pairs inside the region at tau and rho, over its finished
  // replicas; null when none has a matched pair.
  json share_in_region_of(const json& point, double tau, double rho) const {
    std::vector<double> shares;
    for (const json* coverage : coverages(point)) {
      if (auto share = share_in_region(*coverage, tau, rho)) shares.push_back(*share);
    }
    if (shares.empty()) return nullptr;
    double sum = 0;
    for (double s : shares) sum += s;
    return sum / static_cast<double>(shares.size());
  }

  const json& report_;
  const json& points_;
  const double ev_tolerance_;
  std::map<std::string, const json*> by_label_;
  std::map<std::string, const json*> job_by_id_;
};

}  // namespace

json verdicts(const json& report) {
  Verdicts v(report);
  return {{"replication", v.replication()},
          {"headline", v.headline()},
          {"absorption_never_fired", report["absorption_never_fired"]},
          {"effects", v.effects()},
          {"equal_to_baseline", v.equal_to_baseline()},
          {"best", v.best()},
          {"coverage", v.coverage()},
          {"not_finished", v.unfinished()},
          {"pending", v.pending()}};
}

}  // namespace sweep::launcher
