// Turns report["verdicts"] into sentences: a loud warning per penalty that never fired, what
// repeats its baseline and the tolerance used, the best job per objective, unfinished jobs.
#include "report/verdict_text.h"

#include <cctype>
#include <map>

#include "report/format.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;
using Kind = Verdict::Kind;

std::string number(const json& value) { return format_number("%.4g", value); }

class Sentences {
 public:
  explicit Sentences(const json& report) : v_(report["verdicts"]) {
    for (const auto& job : report["jobs"]) by_id_[job["id"].get<std::string>()] = &job;
  }

  // "job <id> (<params>)"
  std::string job(const json& id) const {
    return "job " + id.get<std::string>() + " (" + job_label(*by_id_.at(id.get<std::string>())) + ")";
  }

  void never_fired(std::vector<Verdict>& out) const {
    for (const auto& id : v_["absorption_never_fired"]) {
      out.push_back({Kind::Warning, "The absorption penalty NEVER FIRED in " + job(id) +
                                        ": no pair of latents was ever flagged, so this job trained without the "
                                        "penalty and its metrics can only repeat the baseline's. Lower "
                                        "absorption.dot_threshold or absorption.ratio_threshold."});
    }
  }

  void equal_to_baseline(std::vector<Verdict>& out) const {
    const auto& eq = v_["equal_to_baseline"];
    if (eq["compared"].get<int>() == 0) return;
    for (const auto& e : eq["jobs"]) {
      std::string diffs;
      for (const auto& [metric, d] : e["differences"].items()) {
        diffs += (diffs.empty() ? "" : ", ") + metric + " " + format_signed("%.3g", d.get<double>()) + " (tolerance " +
                 number(e["tolerance"]["metrics"][metric]) + ")";
      }
      std::string from = e["tolerance"]["from"] == "fixed"
                             ? "fixed tolerances"
                             : "the spread of " + std::to_string(e["tolerance"]["replicas"].size()) + " seed replicas";
      out.push_back({Kind::Finding, "Equal to its baseline within noise: " + job(e["id"]) + " against " +
                                        job(e["baseline_id"]) + ": " + diffs + "; " + from + "."});
    }
    if (eq["jobs"].empty()) {
      out.push_back({Kind::Finding, "No job's metrics equal its baseline's within noise (" +
                                        std::to_string(eq["compared"].get<int>()) + " compared)."});
    }
    std::string fixed;
    for (const auto& [metric, t] : eq["fixed_tolerances"].items()) {
      double abs = t["absolute"], rel = t["relative"];
      fixed += (fixed.empty() ? "" : ", ") + metric + " " +
               (rel > 0 ? number(100 * rel) + "% of the baseline's" : number(abs));
    }
    out.push_back({Kind::Finding,
                   "Within noise means every compared metric differs from the baseline's by at most the spread "
                   "(max - min) over the baseline's seed replicas where the sweep has them, else by a fixed "
                   "tolerance: " +
                       fixed + "."});
  }

  void best(std::vector<Verdict>& out) const {
    for (const auto& b : v_["best"]) {
      std::string rule = b["rule"];
      rule[0] = static_cast<char>(std::toupper(rule[0]));
      std::string text = rule + ": ";
      if (b["id"].is_null()) {
        text += "no job qualifies.";
      } else if (b["id"] == b["baseline_id"]) {
        text += "the baseline " + job(b["id"]) + " itself, " + number(b["value"]) + "; no penalised job does better.";
      } else {
        text += job(b["id"]) + ", " + number(b["value"]) + " (its baseline " + b["baseline_id"].get<std::string>() +
                ": " + number(b["baseline_value"]) + ").";
      }
      out.push_back({Kind::Finding, text});
    }
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
};

}  // namespace

std::vector<Verdict> verdict_sentences(const json& report) {
  Sentences s(report);
  std::vector<Verdict> out;
  s.never_fired(out);
  s.equal_to_baseline(out);
  s.best(out);
  s.not_finished(out);
  return out;
}

}  // namespace sweep::launcher
