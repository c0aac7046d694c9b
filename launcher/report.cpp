// Builds report.json from job results (baseline of each job, penalty activity verdicts) and
// renders it as a Markdown table for people.
#include "launcher/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "worker/job_files.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

struct Column {
  const char* metric;
  const char* header;
  const char* format;
  bool delta;  // also show the difference to the baseline
};

const Column kColumns[] = {
    {"explained_variance", "EV", "%.4f", true},   {"mse", "MSE", "%.3g", false},
    {"l0", "L0", "%.2f", true},                   {"dead_fraction", "dead", "%.3f", false},
    {"gt_mcc", "gt_mcc", "%.3f", true},           {"gt_f1", "gt_f1", "%.3f", false},
    {"gt_absorption", "gt_absorption", "%.3f", true},
    {"absorb_pairs_mean", "pairs/step", "%.2f", false},
    {"absorb_active_fraction", "steps fired", "%.3f", false},
};

bool is_done(const json& job) { return job.value("status", "") == "done"; }
bool penalty_enabled(const json& job) { return job["config"].value("absorption.enabled", false); }

// The params of a job without its absorption.* keys: jobs sharing them share a baseline.
json non_absorption_params(const json& params) {
  json out = json::object();
  for (const auto& [k, v] : params.items()) {
    if (k.rfind("absorption.", 0) != 0) out[k] = v;
  }
  return out;
}

std::string format_number(const char* format, const json& value) {
  if (!value.is_number()) return "n/a";
  double v = value.get<double>();
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string format_delta(const char* format, const json& value, const json& base) {
  if (!value.is_number() || !base.is_number()) return "";
  double d = value.get<double>() - base.get<double>();
  if (!std::isfinite(d)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, d);
  return std::string(" (") + (d >= 0 ? "+" : "") + buf + ")";
}

std::string param_cell(const json& params, const std::string& key) {
  if (!params.contains(key)) return "-";
  const auto& v = params[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

json build_report(const std::string& sweep_name, const std::vector<json>& results) {
  json report = {{"sweep", sweep_name}, {"jobs", json::array()}, {"swept_keys", json::array()}};
  json counts = {{"total", results.size()}, {"done", 0}, {"failed", 0}, {"other", 0}};
  json never_fired = json::array();
  for (const auto& r : results) {
    const json params = r.value("params", json::object());
    for (const auto& [k, v] : params.items()) {
      if (std::find(report["swept_keys"].begin(), report["swept_keys"].end(), k) == report["swept_keys"].end()) {
        report["swept_keys"].push_back(k);
      }
    }
    auto status = r.value("status", "unknown");
    if (status == "done" || status == "failed") {
      counts[status] = counts[status].get<int>() + 1;
    } else {
      counts["other"] = counts["other"].get<int>() + 1;
    }
  }
  for (const auto& r : results) {
    json job = {{"id", r["id"]}, {"status", r.value("status", "unknown")}, {"params", r.value("params", json::object())},
                {"baseline", !penalty_enabled(r)}, {"metrics", r.value("metrics", json::object())},
                {"train", r.value("train", json::object())}, {"config", r["config"]},
                {"attempts", r.value("attempts", 1)}};
    if (r.contains("error")) job["error"] = r["error"];
    // The baseline of a penalised job: the unpenalised job with the same non-absorption params.
    if (penalty_enabled(r)) {
      for (const auto& b : results) {
        if (!penalty_enabled(b) && non_absorption_params(b["params"]) == non_absorption_params(r["params"])) {
          job["baseline_id"] = b["id"];
        }
      }
      bool fired = job["metrics"].value("absorb_active_fraction", 0.0) > 0.0;
      job["penalty_fired"] = fired;
      if (is_done(r) && !fired) never_fired.push_back(r["id"]);
    }
    report["jobs"].push_back(job);
  }
  report["counts"] = counts;
  report["penalty_never_fired"] = never_fired;
  return report;
}

std::string render_markdown(const json& report) {
  std::ostringstream md;
  const auto& counts = report["counts"];
  md << "# Sweep `" << report["sweep"].get<std::string>() << "`\n\n";
  md << counts["total"] << " jobs: " << counts["done"] << " done, " << counts["failed"] << " failed.\n\n";

  std::map<std::string, json> by_id;
  for (const auto& job : report["jobs"]) by_id[job["id"]] = job;
  for (const auto& id : report["penalty_never_fired"]) {
    const auto& job = by_id[id.get<std::string>()];
    md << "> **WARNING: the absorption penalty NEVER FIRED in job " << id.get<std::string>() << "** "
       << job["params"].dump() << ": no pair of latents was ever flagged, so this job trained without the penalty "
       << "and its metrics can only repeat the baseline's. Lower absorption.dot_threshold or "
          "absorption.ratio_threshold.\n\n";
  }

  md << "| job |";
  for (const auto& key : report["swept_keys"]) md << " " << key.get<std::string>() << " |";
  md << " status |";
  for (const auto& col : kColumns) md << " " << col.header << " |";
  md << "\n|---|";
  for (size_t i = 0; i < report["swept_keys"].size() + 1 + std::size(kColumns); ++i) md << "---|";
  md << "\n";
  for (const auto& job : report["jobs"]) {
    md << "| " << job["id"].get<std::string>() << (job["baseline"].get<bool>() ? " (baseline)" : "") << " |";
    for (const auto& key : report["swept_keys"]) md << " " << param_cell(job["params"], key) << " |";
    int attempts = job.value("attempts", 1);
    md << " " << job["status"].get<std::string>() << (attempts > 1 ? " (" + std::to_string(attempts) + " attempts)" : "")
       << " |";
    const json* base = job.contains("baseline_id") ? &by_id[job["baseline_id"].get<std::string>()]["metrics"] : nullptr;
    for (const auto& col : kColumns) {
      const auto& m = job["metrics"];
      json value = m.contains(col.metric) ? m[col.metric] : json();
      md << " " << format_number(col.format, value);
      if (col.delta && base && base->contains(col.metric)) md << format_delta(col.format, value, (*base)[col.metric]);
      md << " |";
    }
    md << "\n";
  }
  md << "\nDifferences in parentheses are to the job's baseline (same settings, absorption.enabled = false). "
        "`pairs/step`: mean number of flagged latent pairs per step; `steps fired`: share of steps with at "
        "least one flagged pair.\n";

  bool any_failed = false;
  for (const auto& job : report["jobs"]) {
    if (job["status"] != "failed") continue;
    if (!any_failed) md << "\n## Failed jobs\n\n";
    any_failed = true;
    std::string error = job.value("error", "");
    std::replace(error.begin(), error.end(), '\n', ' ');  // one list item per job
    md << "- " << job["id"].get<std::string>() << " " << job["params"].dump() << ": " << error << "\n";
  }
  return md.str();
}

void write_report(const std::filesystem::path& out_dir, const json& report) {
  worker::write_json_atomic(out_dir / "report.json", report);
  worker::write_file_atomic(out_dir / "report.md", render_markdown(report));
}

}  // namespace sweep::launcher
