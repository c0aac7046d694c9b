// Grid expansion and whole-job validation: cross-key constraints, penalties that could never
// fire (a conditional ratio never exceeds 1; a lift never exceeds 1 / activation_threshold)
// and the memory of the dense co-activation matrices.
#include "config/grid.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/byte_size.h"
#include "common/fnv_hash.h"
#include "config/config_error.h"
#include "config/config_schema.h"
#include "config/job_settings.h"
#include "sae/architecture.h"
#include "sae/penalty.h"
#include "sharding/labels.h"

namespace sweep::launcher {
namespace {

// The most multiply-adds spreading the synthetic directions may take (about a minute on one core).
constexpr double kMaxOrthogonalizeWork = 1e11;

using nlohmann::json;

// Where a job's value of `key` came from: its grid axis, the file, or the default.
std::string where_set(const SweepSpec& spec, const json& params, const std::string& key) {
  for (const auto& axis : spec.grid) {
    if (axis.key == key && params.contains(key)) return axis.where;
  }
  auto it = spec.where.find(key);
  return it != spec.where.end() ? it->second : spec.file.filename().string() + " (default of " + key + ")";
}

std::string describe(const json& params) {
  return params.empty() ? "" : " (grid point " + params.dump() + ")";
}

void validate_job(const SweepSpec& spec, const PlannedJob& job) {
  const json& c = job.resolved;
  auto fail = [&](const std::string& key, const std::string& message) {
    throw ConfigError(where_set(spec, job.params, key) + ": " + key + " = " + c[key].dump() + ": " + message +
                      describe(job.params));
  };
  // The architecture's and the penalties' own checks, on the typed settings.
  const auto typed = to_job_config(job);
  for (const auto& problem : sae::architecture(typed.sae.arch).check(typed.sae)) fail(problem.key, problem.message);
  const sae::PenaltyContext context{c, typed.absorption, typed.sae.d_sae, typed.seed, {}};
  for (const auto& penalty : sae::penalties()) {
    if (!penalty.check || sae::penalty_is_off(penalty, c)) continue;
    for (const auto& problem : penalty.check(context)) fail(problem.key, problem.message);
  }
  int64_t ranks = c["train.ranks_per_job"];
  if (c["train.batch_size"].get<int64_t>() % ranks != 0) {
    fail("train.batch_size", "not divisible by train.ranks_per_job = " + std::to_string(ranks) +
                                 ": each rank of a job takes an equal slice of the global batch");
  }
  if (c["data.source"] == "files" && c["data.paths"].empty()) {
    fail("data.paths", "data.source = \"files\" needs at least one glob of .safetensors/.npy shards");
  }
  const bool cache = c["data.source"] == "saelens";
  if (cache && c["data.path"].get<std::string>().empty()) {
    fail("data.path", "data.source = \"saelens\" needs the directory of the SAELens activation cache");
  }
  if (!cache && !c["data.path"].get<std::string>().empty()) {
    fail("data.path", "names a SAELens cache's directory, for data.source = \"saelens\"; activation files are given "
                      "by data.paths");
  }
  if (cache && !c["data.paths"].empty()) {
    fail("data.paths", "lists activation files, for data.source = \"files\"; a SAELens cache is given by data.path");
  }
  if (c["data.source"] == "synthetic" && !c["data.ground_truth"].get<std::string>().empty()) {
    fail("data.ground_truth", "applies to data.source = \"files\": the synthetic source has its own ground truth");
  }
  const auto labels = c["data.labels"].get<std::string>();
  if (labels == sharding::kParentLabels && c["data.source"] != "synthetic" && c["data.ground_truth"].get<std::string>().empty()) {
    fail("data.labels", "\"parents\" labels rows by the parent features of the ground truth, and this data has none; "
                        "give data.ground_truth, or a labels file");
  }
  if (!labels.empty() && labels != sharding::kParentLabels && c["data.source"] == "synthetic") {
    fail("data.labels", "a labels file labels the rows of activation files or a cache (data.source = \"files\" or "
                        "\"saelens\"); the synthetic "
                        "source labels its rows with data.labels = \"parents\"");
  }
  if (c["data.source"] == "synthetic" && c["data.p_min"].get<double>() > c["data.p_max"].get<double>()) {
    fail("data.p_min", "larger than data.p_max = " + c["data.p_max"].dump());
  }
  if (c["data.source"] == "synthetic" && c["data.correlation_strength"].get<double>() > 0 &&
      c["data.correlation_rank"].get<int64_t>() == 0) {
    fail("data.correlation_strength", "needs data.correlation_rank >= 1 shared factors to correlate the roots through");
  }
  if (c["data.source"] == "synthetic") {
    // Spreading the directions costs 2 n^2 d multiply-adds a step, about 2e9 a second on one core.
    const double n = synthetic_feature_count(c), work = 2.0 * n * n * c["data.d_in"].get<double>() *
                                                        c["data.orthogonalize_steps"].get<double>();
    if (work > kMaxOrthogonalizeWork) {
      std::ostringstream text;
      text << "spreading " << n << " feature directions apart takes about " << work
           << " multiply-adds (minutes to hours, in every job); lower it (0 keeps random directions, which in "
              "high dimensions are nearly orthogonal already)";
      fail("data.orthogonalize_steps", text.str());
    }
  }
  // The machine's memory against the dense pair matrices: the launcher's size check, not the penalty's.
  if (!typed.absorption.enabled) return;
  double need = absorption_matrix_bytes(c["sae.d_sae"].get<int64_t>());
  double have = physical_memory_bytes();
  if (c["absorption.pairs"] == "dense" && c["train.device"] != "cuda" && need > 0.8 * have) {
    fail("sae.d_sae", "with absorption.pairs = \"dense\" the penalty's d_sae x d_sae matrices need about " + byte_size(need) +
                          " but this machine has " + byte_size(have) +
                          "; use absorption.pairs = \"candidates\", lower sae.d_sae or run on a GPU");
  }
}

// A setting of a training penalty (absorption.*, orthogonality.*; sae/penalty.h).
bool is_penalty_key(const std::string& key) { return sae::penalty_of_setting(key) != nullptr; }

// The grid's units, in axis order: an axis offers its values one by one; a zip group (at its first
// axis) offers the i-th values of all its axes at once. Without `penalties`, the penalties' axes
// are left out (a baseline's grid), and a zip group keeps its other axes' distinct tuples.
// Each choice is a set of key -> value.
std::vector<std::vector<json>> grid_units(const SweepSpec& spec, bool penalties) {
  std::map<std::string, const GridAxis*> axes;
  for (const auto& axis : spec.grid) axes[axis.key] = &axis;
  std::map<std::string, size_t> group_of;
  for (size_t g = 0; g < spec.zips.size(); ++g) {
    for (const auto& key : spec.zips[g]) group_of[key] = g;
  }
  std::vector<std::vector<json>> units;
  std::set<size_t> groups_done;
  for (const auto& axis : spec.grid) {
    auto group = group_of.find(axis.key);
    const std::vector<std::string> keys = group == group_of.end() ? std::vector<std::string>{axis.key} : spec.zips[group->second];
    if (group != group_of.end() && !groups_done.insert(group->second).second) continue;
    std::vector<json> choices;
    for (size_t i = 0; i < axis.values.size(); ++i) {
      json choice = json::object();
      for (const auto& key : keys) {
        if (penalties || !is_penalty_key(key)) choice[key] = axes.at(key)->values[i];
      }
      if (!choice.empty() && std::find(choices.begin(), choices.end(), choice) == choices.end()) choices.push_back(choice);
    }
    if (!choices.empty()) units.push_back(std::move(choices));
  }
  return units;
}

// Every combination of one choice per unit, in unit order.
std::vector<json> product(const std::vector<std::vector<json>>& units) {
  std::vector<json> points{json::object()};
  for (const auto& unit : units) {
    std::vector<json> next;
    for (const auto& p : points) {
      for (const auto& choice : unit) {
        auto q = p;
        q.update(choice);
        next.push_back(q);
      }
    }
    points = std::move(next);
  }
  return points;
}

// The settings that only some architectures read, and those that read them (their table rows).
std::map<std::string, std::set<std::string>> architecture_settings() {
  std::map<std::string, std::set<std::string>> table;
  for (const auto& entry : sae::architectures()) {
    for (const auto& row : entry.settings) table[row.key].insert(entry.name);
    for (const auto& key : entry.also_reads) table[key].insert(entry.name);
  }
  return table;
}

// Whether a job of architecture `arch` reads `key` (every setting but the table's is read by all).
bool reads(const std::map<std::string, std::set<std::string>>& table, const std::string& arch, const std::string& key) {
  auto it = table.find(key);
  return it == table.end() || it->second.count(arch) > 0;
}

// A job ignores every other absorption.* setting without the penalty, and the settings of other
// architectures: they are dropped from its params and left at the sweep's values, so that grid
// points differing only there (say absorption.enabled = [true, false] crossed with
// ratio_threshold, or sae.arch crossed with sae.k) are one job, not several identical ones.
// `ignored` collects (setting, architecture) for the settings dropped as not read.
PlannedJob make_job(const SweepSpec& spec, const json& params, const GridPoint* point,
                    std::set<std::pair<std::string, std::string>>& ignored) {
  PlannedJob job;
  job.resolved = spec.base;
  for (const auto& [key, value] : params.items()) job.resolved[key] = value;
  job.baseline = true;  // every penalty off
  for (const auto& entry : sae::penalties()) job.baseline = job.baseline && sae::penalty_is_off(entry, job.resolved);
  const std::string arch = job.resolved["sae.arch"];
  const auto read_by = architecture_settings();
  job.params = json::object();
  for (const auto& [key, value] : params.items()) {
    const bool unread = !reads(read_by, arch, key);
    if (unread) ignored.insert({key, arch});
    const auto* penalty = sae::penalty_of_setting(key);  // a setting of a penalty this job has off
    const bool of_an_off_penalty = penalty && key != penalty->switch_key && sae::penalty_is_off(*penalty, job.resolved);
    if (unread || of_an_off_penalty) {
      job.resolved[key] = spec.base[key];
    } else {
      job.params[key] = value;
    }
  }
  if (point && !point->label.empty()) {
    job.label = point->label;
    for (const auto& [key, value] : point->settings.items()) {
      if (job.params.contains(key)) job.label_keys.push_back(key);
    }
  }
  job.id = job_id(job.resolved);
  return job;
}

}  // namespace

std::string job_id(const json& resolved) {
  // Settings that do not change what a job computes (the sweep's name, its ranks, checkpoint
  // and retry settings) stay out of the id, so changing them keeps results and checkpoints.
  auto canonical = resolved;
  for (const auto& spec : config_schema()) {
    if (!spec.affects_results || (spec.id_omits_default && canonical.value(spec.key, json()) == spec.default_value))
      canonical.erase(spec.key);
  }
  const std::string text = canonical.dump();
  uint64_t hash = kFnvOffset;
  fnv1a_bytes(hash, text.data(), text.size());
  return hex_digits(hash).substr(0, 12);
}

double physical_memory_bytes() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return 1024.0 * kib;
  }
  return physical_memory_bytes();  // no /proc/meminfo: the total is all we know
}

double synthetic_feature_count(const json& c) {
  const double roots = c["data.n_roots"].get<double>(), branching = c["data.branching"].get<double>();
  double per_tree = 0, level = 1;
  for (int64_t l = 0; l < c["data.depth"].get<int64_t>() && std::isfinite(per_tree); ++l, level *= branching) {
    per_tree += level;
  }
  return roots * per_tree;
}

double absorption_matrix_bytes(int64_t d_sae) {
  // Q, the step's co-firing counts, ratios, cosines and their gradient, the flag mask and weights.
  return 7.0 * 4.0 * static_cast<double>(d_sae) * static_cast<double>(d_sae);
}

namespace {

// The most jobs a sweep may plan: each is a directory, a plan entry and a report row, so a grid
// beyond this is a mistake (a million seeds), refused before it is expanded.
constexpr double kMaxJobs = 100000;

void check_grid_size(const SweepSpec& spec) {
  double jobs = static_cast<double>(std::max<size_t>(1, spec.points.size()));
  std::string axes;
  for (const auto& unit : grid_units(spec, true)) jobs *= static_cast<double>(unit.size());
  if (jobs <= kMaxJobs) return;
  for (const auto& axis : spec.grid) axes += (axes.empty() ? "" : ", ") + axis.key + " (" + std::to_string(axis.values.size()) + ")";
  std::ostringstream text;
  text << spec.file.filename().string() << ": the grid has " << jobs << " points (" << axes
       << (spec.points.empty() ? "" : ", times " + std::to_string(spec.points.size()) + " [[grid.points]]")
       << "), more than the " << kMaxJobs << " jobs a sweep may hold; shorten the axes, or split the sweep";
  throw ConfigError(text.str());
}

std::vector<PlannedJob> expand(const SweepSpec& spec, std::set<std::pair<std::string, std::string>>& ignored) {
  check_grid_size(spec);
  std::vector<PlannedJob> jobs;
  std::set<std::string> seen;
  auto add = [&](PlannedJob job) {
    if (seen.insert(job.id).second) jobs.push_back(std::move(job));
  };
  // Each explicit point (or the base alone) crossed with the axes; a baseline keeps its point's
  // settings but the penalties' (every penalty off), and its label where the point sets no penalty
  // key but to turn one off (else points differing only there share the baseline, which is then
  // named by its settings).
  const GridPoint base_point;
  std::vector<const GridPoint*> points;
  for (const auto& point : spec.points) points.push_back(&point);
  if (points.empty()) points.push_back(&base_point);
  if (spec.include_baseline) {
    for (const auto* point : points) {
      bool names_baseline = true;
      for (auto params : product(grid_units(spec, false))) {
        for (const auto& [key, value] : point->settings.items()) {
          const auto* penalty = sae::penalty_of_setting(key);
          if (!penalty) params[key] = value;
          names_baseline = names_baseline && (!penalty || (key == penalty->switch_key &&
                                                           sae::penalty_is_off(*penalty, json{{key, value}})));
        }
        // A switch is named where the penalty would otherwise be on: by default (the absorption
        // penalty, so its baselines' ids say absorption.enabled = false) or in the sweep file.
        for (const auto& entry : sae::penalties()) {
          if (!sae::penalty_is_off(entry, default_config()) || !sae::penalty_is_off(entry, spec.base))
            params[entry.switch_key] = entry.off;
        }
        add(make_job(spec, params, names_baseline ? point : nullptr, ignored));
      }
    }
  }
  for (const auto* point : points) {
    for (auto params : product(grid_units(spec, true))) {
      params.update(point->settings);
      add(make_job(spec, params, point, ignored));
    }
  }
  for (const auto& axis : spec.grid) {
    if (axis.key == "train.ranks_per_job") {
      throw ConfigError(axis.where + ": train.ranks_per_job cannot be a grid axis: every group of ranks must have the "
                                     "same size; set it once in [train]");
    }
    if (!find_key(axis.key)->affects_results) {
      throw ConfigError(axis.where + ": " + axis.key + " cannot be a grid axis: it changes how jobs run, not what they "
                                     "compute; set it once in its section");
    }
  }
  for (const auto& job : jobs) validate_job(spec, job);
  return jobs;
}

}  // namespace

json params_without_penalties(const json& params) {
  json out = json::object();
  for (const auto& [key, value] : params.items()) {
    if (!is_penalty_key(key)) out[key] = value;
  }
  return out;
}

std::vector<PlannedJob> expand_grid(const SweepSpec& spec) {
  std::set<std::pair<std::string, std::string>> ignored;
  return expand(spec, ignored);
}

std::vector<std::string> ignored_settings(const SweepSpec& spec) {
  std::set<std::pair<std::string, std::string>> ignored;
  expand(spec, ignored);
  std::map<std::string, std::string> archs_by_key;
  for (const auto& [key, arch] : ignored) archs_by_key[key] += (archs_by_key[key].empty() ? "" : ", ") + arch;
  std::vector<std::string> notes;
  for (const auto& [key, archs] : archs_by_key) notes.push_back(key + " is ignored for " + archs + " jobs");
  return notes;
}

}  // namespace sweep::launcher
