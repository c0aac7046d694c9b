// Turns report["verdicts"] into sentences: a loud warning when no difference can be told from
// seed noise and per penalty that never fired, each point's effects with intervals, what repeats
// its baseline and how that was judged, the best point per objective, unfinished jobs.
#include "report/verdict_text.h"

#include <cctype>
#include <cmath>
#include <map>

#include "report/format.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;
using Kind = Verdict::Kind;

std::string number(const json& value) { return format_number("%.4g", value); }
std::string interval(const json& low, const json& high) { return "95% CI " + number(low) + " to " + number(high); }
std::string percent_of(const json& share) { return format_number("%.0f", 100 * share.get<double>()) + "%"; }
// A relative change as a signed percentage: "-70%", "-2.1%".
std::string relative(double change) {
  return format_signed(std::abs(change) >= 0.1 ? "%.0f" : "%.1f", 100 * change) + "%";
}

class Sentences {
 public:
  explicit Sentences(const json& report) : v_(report["verdicts"]) {
    for (const auto& job : report["jobs"]) by_id_[job["id"].get<std::string>()] = &job;
    for (const auto& point : report["points"]) points_[point["label"].get<std::string>()] = &point;
  }

  // "job <id> (<params>)"
  std::string job(const json& id) const {
    return "job " + id.get<std::string>() + " (" + job_label(*by_id_.at(id.get<std::string>())) + ")";
  }

  // A point of one job as that job; else "<label> (<n> replicas)".
  std::string point(const json& label) const {
    const json& p = *points_.at(label.get<std::string>());
    if (p["jobs"].size() == 1) return job(p["jobs"][0]);
    return label.get<std::string>() + " (" + p["n"].dump() + " of " + std::to_string(p["jobs"].size()) +
           " replicas finished)";
  }

  void replication(std::vector<Verdict>& out) const {
    const auto& r = v_["replication"];
    std::string keys;
    for (const auto& k : r["replica_keys"]) keys += (keys.empty() ? "" : ", ") + k.get<std::string>();
    if (!r["replicated"].get<bool>() && r.value("planned_replicas", 1) >= 2) {
      out.push_back({Kind::Warning, "No grid point has two finished replicas yet (up to " + r["planned_replicas"].dump() +
                                        " are planned), so no difference in this report can be told from seed noise. "
                                        "Re-run the same command to finish them (finished jobs are kept)."});
      return;
    }
    if (!r["replicated"].get<bool>()) {
      out.push_back({Kind::Warning, "Every grid point has a single replica, so no difference in this report can be told "
                                    "from seed noise. Add seeds and re-run the same command with " +
                                        r["hint"].get<std::string>() +
                                        " (finished jobs are kept); replica keys here: " + keys + "."});
      return;
    }
    if (r["single_replica_points"].get<int>() > 0) {
      out.push_back({Kind::Finding, r["single_replica_points"].dump() +
                                        " grid point(s) have a single finished replica: their differences cannot be "
                                        "told from seed noise."});
    }
  }

  void never_fired(std::vector<Verdict>& out) const {
    for (const auto& id : v_["absorption_never_fired"]) {
      out.push_back({Kind::Warning, "The absorption penalty NEVER FIRED in " + job(id) +
                                        ": no pair of latents was ever flagged, so this job trained without the "
                                        "penalty and its metrics can only repeat the baseline's. Lower "
                                        "absorption.dot_threshold or absorption.ratio_threshold."});
    }
  }

  // A warning where the region could not reach most absorbing pairs before the penalty acted;
  // otherwise what the penalty did to them.
  void coverage(std::vector<Verdict>& out) const {
    for (const auto& e : v_["coverage"]["points"]) {
      const std::string thresholds = "tau = " + number(e["tau"]) + " and rho = " + number(e["rho"]);
      const std::string after = percent_of(e["share"]) + " remain in it at the end of training with the penalty";
      if (e["judged_on"] == "baseline") {
        const std::string before = percent_of(e["baseline_share"]) + " of the latent pairs matched to true (parent, child) "
                                   "features were in the flagged region (both latents active, decoder cosine > " +
                                   thresholds.substr(0, thresholds.find(" and")) + ", ratio > rho = " + number(e["rho"]) +
                                   ") before the penalty acted (judged on the baseline point, " + point(e["baseline_point"]) + ")";
        if (e["few"].get<bool>()) {
          out.push_back({Kind::Warning, "The flagged region of " + point(e["point"]) + " reaches few of the pairs that "
                                        "absorb: only " + before + ", so the penalty could not act on most of them "
                                        "whatever its strength (" + after + "). Lower absorption.dot_threshold (see "
                                        "the coverage plot)."});
        } else {
          out.push_back({Kind::Finding, point(e["point"]) + ": " + before + "; " + after + "."});
        }
        continue;
      }
      if (!e["few"].get<bool>()) continue;
      out.push_back({Kind::Warning, "The flagged region of " + point(e["point"]) + " holds few of the pairs that absorb: " +
                                        percent_of(e["share"]) + " (mean over finished replicas) of the latent pairs "
                                        "matched to true (parent, child) features are in it at " + thresholds +
                                        " at the end of training. With no baseline to judge by, this may be the "
                                        "penalty's own doing (it pushes pairs out of the region); add the baseline "
                                        "(grid.include_baseline = true) to tell."});
    }
  }

  void effects(std::vector<Verdict>& out) const {
    for (const auto& e : v_["effects"]) {
      std::string parts;
      for (const auto& [metric, d] : e["metrics"].items()) {
        const double diff = d["mean"];
        std::string part = d["distinguishable"].get<bool>()
                               ? std::string(diff < 0 ? "lowers " : "raises ") + metric + " by " +
                                     number(std::abs(diff)) + " (" + interval(d["ci_low"], d["ci_high"]) + ")"
                               : metric + " unchanged within noise (" + format_signed("%.3g", diff) + ", " +
                                     interval(d["ci_low"], d["ci_high"]) + ")";
        parts += (parts.empty() ? "" : "; ") + part;
      }
      out.push_back({Kind::Finding, e["point"].get<std::string>() + " against its baseline (paired over " +
                                        e["n"].dump() + " replicas): " + parts + "."});
    }
  }

  void equal_to_baseline(std::vector<Verdict>& out) const {
    const auto& eq = v_["equal_to_baseline"];
    if (eq["compared"].get<int>() == 0) return;
    for (const auto& e : eq["points"]) {
      std::string diffs;
      for (const auto& [metric, d] : e["differences"].items()) {
        std::string how = e.contains("intervals") && e["intervals"].contains(metric)
                              ? interval(e["intervals"][metric][0], e["intervals"][metric][1])
                              : "tolerance " + number(e["tolerances"][metric]);
        diffs += (diffs.empty() ? "" : ", ") + metric + " " + format_signed("%.3g", d.get<double>()) + " (" + how + ")";
      }
      std::string from = e["from"] == "fixed" ? "fixed tolerances (one replica)" : "paired over replicas";
      out.push_back({Kind::Finding, "Equal to its baseline within noise: " + point(e["point"]) + " against " +
                                        point(e["baseline_point"]) + ": " + diffs + "; " + from + "."});
    }
    if (eq["points"].empty()) {
      out.push_back({Kind::Finding, "No grid point's metrics equal its baseline's within noise (" +
                                        std::to_string(eq["compared"].get<int>()) + " compared)."});
    }
    std::string fixed;
    for (const auto& [metric, t] : eq["fixed_tolerances"].items()) {
      double abs = t["absolute"], rel = t["relative"];
      fixed += (fixed.empty() ? "" : ", ") + metric + " " +
               (rel > 0 ? number(100 * rel) + "% of the baseline's" : number(abs));
    }
    out.push_back({Kind::Finding,
                   "Within noise means: with replicas, the 95% t interval of the difference to the baseline (paired "
                   "by replica) holds 0 for every compared metric; with one replica, every difference is at most a "
                   "fixed tolerance: " +
                       fixed + "."});
  }

  void best(std::vector<Verdict>& out) const {
    for (const auto& b : v_["best"]) {
      std::string rule = b["rule"];
      rule[0] = static_cast<char>(std::toupper(rule[0]));
      std::string text = rule + ": ";
      if (b["point"].is_null()) {
        text += "no grid point qualifies.";
      } else if (b["point"] == b["baseline_point"]) {
        text += "the baseline itself: " + point(b["point"]) + ", " + number(b["value"]) +
                "; no penalised setting does better on average.";
      } else {
        text += point(b["point"]) + ", " + number(b["value"]) + " (its baseline: " + number(b["baseline_value"]) + "); ";
        if (b["distinguishable"].is_null()) {
          text += "with fewer than 2 paired replicas this cannot be told from seed noise.";
        } else {
          const auto& d = b["difference"];
          text += "the paired difference " + format_signed("%.3g", d["mean"].get<double>()) + " (" +
                  interval(d["ci_low"], d["ci_high"]) + ", n = " + d["n"].dump() + ") " +
                  (b["distinguishable"].get<bool>() ? "is distinguishable from seed noise."
                                                    : "cannot be told from seed noise: its interval holds 0.");
        }
      }
      out.push_back({Kind::Finding, text});
      if (b.contains("ranking") && b["ranking"].size() > 1) out.push_back({Kind::Finding, ranking(b)});
      if (b.contains("front") && !b["front"].empty()) out.push_back({Kind::Finding, front(b)});
    }
  }

  // "Ranked by gt_absorption ...: a 0.005 ± 0.001 (n = 3), b ...; left out ...: c (-0.015)."
  static std::string ranking(const json& b) {
    std::string text = "Ranked by " + b["metric"].get<std::string>() + " (mean ± sd over replicas), the " +
                       std::to_string(b["ranking"].size()) + " points that keep the same bound: ";
    for (size_t i = 0; i < b["ranking"].size(); ++i) {
      const auto& r = b["ranking"][i];
      text += (i ? "; " : "") + std::to_string(i + 1) + ". " + r["point"].get<std::string>() + " " +
              number(r["mean"]) + (r["sd"].is_number() ? " ± " + number(r["sd"]) : "") + " (n = " + r["n"].dump() + ")";
    }
    text += ".";
    if (!b["left_out"].empty()) {
      text += " Left out, their explained variance lower than that: ";
      for (size_t i = 0; i < b["left_out"].size(); ++i) {
        const auto& l = b["left_out"][i];
        text += (i ? "; " : "") + l["point"].get<std::string>() + " (" + format_signed("%.3g", l["ev_change"].get<double>()) +
                " against its baseline)";
      }
      text += ".";
    }
    return text;
  }

  // "On the gt_absorption / explained-variance front: a (0.012, EV 0.88), ..."
  static std::string front(const json& b) {
    const std::string metric = b["metric"];
    std::string text = "The " + metric + " / explained-variance trade-off (means over replicas; no other point has both "
                       "a better " + metric + " and a higher explained variance), from least " + metric + ": ";
    for (size_t i = 0; i < b["front"].size(); ++i) {
      const auto& f = b["front"][i];
      text += (i ? "; " : "") + f["point"].get<std::string>() + " (" + metric + " " + number(f["mean"]) +
              ", explained variance " + format_number("%.4f", f["explained_variance"]) + ", n = " + f["n"].dump() + ")";
    }
    return text + ".";
  }

  void pending(std::vector<Verdict>& out) const {
    const auto& ids = v_.value("pending", json::array());
    if (ids.empty()) return;
    out.push_back({Kind::Finding, std::to_string(ids.size()) + " job(s) have not run yet (pending, 0 attempts): " +
                                      "re-run the same command to run them."});
  }

  void not_finished(std::vector<Verdict>& out) const {
    for (const auto& f : v_["not_finished"]) {
      int attempts = f["attempts"];
      const json& j = *by_id_.at(f["id"].get<std::string>());
      out.push_back({Kind::Failure, f["id"].get<std::string>() + " " + j["params"].dump() + ": " +
                                        f["status"].get<std::string>() +
                                        (attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "") +
                                        ": " + one_line(f["reason"])});
    }
  }

 private:
  const json& v_;
  std::map<std::string, const json*> by_id_;
  std::map<std::string, const json*> points_;  // by label
};

}  // namespace

std::vector<std::string> headline_lines(const json& report) {
  const json& lines = report["verdicts"].value("headline", json::array());
  std::vector<std::string> out;
  for (const auto& h : lines) {
    const json& d = h["difference"];
    std::string text = h["point"].get<std::string>() + ": " + h["metric"].get<std::string>() + " ";
    if (h["relative"].is_object()) {
      const json& r = h["relative"];
      text += relative(r["mean"].get<double>());
      if (r.contains("ci_low"))
        text += " (95% CI " + relative(r["ci_low"].get<double>()) + " to " + relative(r["ci_high"].get<double>()) + ")";
      text += ", " + format_signed("%.3g", d["mean"].get<double>()) + " from " + number(r["baseline_mean"]);
    } else {
      text += format_signed("%.3g", d["mean"].get<double>());
      if (d.contains("ci_low")) text += " (" + interval(d["ci_low"], d["ci_high"]) + ")";
    }
    if (h.contains("explained_variance")) {
      const json& ev = h["explained_variance"];
      text += "; explained variance " + format_signed("%.3f", ev["mean"].get<double>());
      if (ev["relative"].is_object()) text += " (" + relative(ev["relative"]["mean"].get<double>()) + ")";
    }
    text += "; n = " + h["n"].dump();
    if (h["distinguishable"].is_null()) text += ", one replica: cannot be told from seed noise";
    else if (!h["distinguishable"].get<bool>()) text += ", within seed noise (the interval holds 0)";
    out.push_back(text);
  }
  if (out.empty() && !report["verdicts"]["effects"].empty())
    out.push_back("No absorption metric was measured (it needs data.ground_truth or the built-in data for gt_absorption, "
                  "data.labels for probe_absorption_fraction): the effects on the other metrics are below.");
  return out;
}

std::vector<Verdict> verdict_sentences(const json& report) {
  Sentences s(report);
  std::vector<Verdict> out;
  s.replication(out);
  s.never_fired(out);
  s.coverage(out);
  s.effects(out);
  s.equal_to_baseline(out);
  s.best(out);
  s.pending(out);
  s.not_finished(out);
  return out;
}

}  // namespace sweep::launcher
