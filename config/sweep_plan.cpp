// Matching a sweep file's jobs against an existing plan by job id, and explaining a mismatch in
// terms of the keys the user changed: settings first, then grid axes.
#include "config/sweep_plan.h"

#include <functional>
#include <map>
#include <set>

#include "config/config_error.h"
#include "config/config_schema.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

// The settings that decide what jobs compute (grid axes apart).
json result_settings(const SweepSpec& spec) {
  json out = json::object();
  for (const auto& [key, value] : spec.base.items()) {
    const auto* key_spec = find_key(key);
    if (key_spec && key_spec->affects_results) out[key] = value;
  }
  return out;
}

json grid_json(const SweepSpec& spec) {
  json grid = json::object();
  for (const auto& axis : spec.grid) grid[axis.key] = axis.values;
  grid["include_baseline"] = spec.include_baseline;
  if (!spec.zips.empty()) grid["zip"] = spec.zips;
  if (!spec.points.empty()) {
    grid["points"] = json::array();
    for (const auto& point : spec.points) grid["points"].push_back({{"settings", point.settings}, {"label", point.label}});
  }
  if (!spec.replicas.empty()) grid["replicas"] = spec.replicas;
  return grid;
}

std::string where_set(const SweepSpec& spec, const std::string& key) {
  auto it = spec.where.find(key);
  return it == spec.where.end() ? " (now the default)" : " (" + it->second + ")";
}

// One line per key of either object whose value differs: "<prefix><key>: old -> new<suffix>".
void add_differences(const json& before, const json& now, const std::string& prefix,
                     const std::function<std::string(const std::string&)>& suffix, std::vector<std::string>& lines) {
  std::set<std::string> keys;
  for (const auto& [k, v] : before.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  for (const auto& key : keys) {
    auto a = before.value(key, json()), b = now.value(key, json());
    if (a != b) lines.push_back(prefix + key + ": " + a.dump() + " -> " + b.dump() + suffix(key));
  }
}

// The settings, then the grid axes, that differ between the old plan and the sweep now.
std::vector<std::string> changed_keys(const json& old_plan, const SweepSpec& spec) {
  std::vector<std::string> lines;
  add_differences(old_plan.value("settings", json::object()), result_settings(spec), "",
                  [&](const std::string& key) { return where_set(spec, key); }, lines);
  add_differences(old_plan.value("grid", json::object()), grid_json(spec), "grid.",
                  [](const std::string&) { return std::string(); }, lines);
  return lines;
}

}  // namespace

json plan_json(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  json plan = {{"sweep", spec.name},
               {"settings", result_settings(spec)},
               {"grid", grid_json(spec)},
               {"report", spec.report},
               {"jobs", json::array()}};
  for (size_t i = 0; i < jobs.size(); ++i) {
    json entry = {{"index", i},
                  {"id", jobs[i].id},
                  {"params", jobs[i].params},
                  {"baseline", jobs[i].baseline},
                  {"baseline_params", params_without_penalties(jobs[i].params)},
                  {"config", jobs[i].resolved}};
    if (!jobs[i].label.empty()) {
      entry["label"] = jobs[i].label;
      entry["label_keys"] = jobs[i].label_keys;
    }
    plan["jobs"].push_back(entry);
  }
  return plan;
}

std::vector<PlannedJob> jobs_from_plan(const json& plan) {
  std::vector<PlannedJob> jobs;
  for (const auto& j : plan.at("jobs")) {
    jobs.push_back({j.at("id").get<std::string>(), j.at("params"), j.at("config"), j.at("baseline").get<bool>(),
                    j.value("label", std::string()), j.value("label_keys", json::array())});
  }
  return jobs;
}

std::vector<PlannedJob> extend_plan(const json& old_plan, const std::filesystem::path& plan_file, const SweepSpec& spec,
                                    const std::vector<PlannedJob>& jobs) {
  std::map<std::string, const PlannedJob*> now;
  for (const auto& job : jobs) now[job.id] = &job;
  std::vector<PlannedJob> ordered;
  std::set<std::string> kept;
  std::vector<std::string> dropped;
  for (const auto& old_job : old_plan.at("jobs")) {
    std::string id = old_job.at("id");
    auto it = now.find(id);
    if (it == now.end()) {
      dropped.push_back(id + " " + old_job.at("params").dump());
      continue;
    }
    ordered.push_back(*it->second);  // the new resolved config: runtime settings may have changed
    kept.insert(id);
  }
  if (!dropped.empty()) {
    std::string message = plan_file.string() + ": the sweep file no longer matches " + std::to_string(dropped.size()) +
                          " job(s) of this output directory's plan, so their results would not belong to it.";
    auto lines = changed_keys(old_plan, spec);
    message += lines.empty() ? "\n  jobs no longer in the sweep:" : "\n  changed:";
    for (const auto& line : lines.empty() ? dropped : lines) message += "\n    " + line;
    message += "\n  Undo the change, write to another --out, or re-run with --fresh (the old directory is kept under a new "
               "name).";
    throw ConfigError(message);
  }
  for (const auto& job : jobs) {
    if (!kept.count(job.id)) ordered.push_back(job);
  }
  return ordered;
}

}  // namespace sweep::launcher
