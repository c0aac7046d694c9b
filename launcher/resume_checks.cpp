// What a re-run checks and mends in an existing output directory before it trains: --fresh
// moves it aside (not from under a live run), changed activation files are refused, damaged job
// files are kept aside and their jobs run again.
#include "launcher/resume_checks.h"

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/job_state.h"
#include "config/config_error.h"
#include "config/job_settings.h"
#include "report/files.h"
#include "sharding/dataset.h"
#include "sharding/fingerprint.h"
#include "sharding/labels.h"

namespace sweep::launcher {
namespace {

namespace fs = std::filesystem;

// Renames `path` to <path><suffix><n> with the first n that is free, never overwriting an older one.
fs::path rename_aside(const fs::path& path, const std::string& suffix) {
  for (int n = 1;; ++n) {
    fs::path aside = path.string() + suffix + std::to_string(n);
    if (fs::exists(aside)) continue;
    fs::rename(path, aside);
    return aside;
  }
}

// Keeps a damaged file beside its place as <name>.damaged-<n>.
void keep_aside(const fs::path& file) { rename_aside(file, ".damaged-"); }

bool parses_as_json(const fs::path& file) {
  try {
    read_json(file);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

// --fresh: the old directory moves aside (never deleted) to <out>.old-<n>, unless a live process
// still runs one of its jobs (its result would land in the new directory). Only a sweep's output
// (a directory with plan.json) is ever moved; an empty directory stays as it is.
void move_aside(const fs::path& out, double stale_after_seconds) {
  const auto status = fs::symlink_status(out);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status)) {
    throw ConfigError(out.string() + ": --out names something that is not a directory, and --fresh moves aside only a "
                                     "sweep's output directory; choose another --out");
  }
  if (fs::is_empty(out)) return;
  if (!fs::exists(out / "plan.json")) {
    throw ConfigError(out.string() + ": not a sweep's output directory (it has no plan.json), so --fresh will not move "
                                     "it; choose another --out, or move it away yourself");
  }
  if (fs::is_directory(out / "jobs")) {
    for (const auto& entry : fs::directory_iterator(out / "jobs")) {
      JobState state;
      try {
        state = read_job_state(entry.path());
      } catch (const std::exception&) {
        continue;  // unreadable: no owner to protect
      }
      if (!owner_alive(state, stale_after_seconds)) continue;
      throw ConfigError(out.string() + ": job " + entry.path().filename().string() + " is being run by " + state.owner +
                        " (heartbeat " + std::to_string(static_cast<int>(now_seconds() - state.heartbeat)) +
                        " s ago), so --fresh cannot move the directory from under it; stop that run (or let it finish), "
                        "then re-run with --fresh");
    }
  }
  auto aside = rename_aside(out, ".old-");
  spdlog::warn("--fresh: the previous {} is kept as {}", out.string(), aside.string());
}

// The fingerprint of every file the jobs read: each distinct set of activation files by its
// data.paths, each SAELens cache by "data.path: DIR", and each ground-truth and labels file by
// "data.ground_truth: PATH" and "data.labels: PATH".
nlohmann::json fingerprint_data(const std::vector<PlannedJob>& jobs) {
  nlohmann::json out = nlohmann::json::object();
  auto add = [&](const std::string& key, const std::vector<std::string>& files) {
    if (!out.contains(key)) out[key] = sharding::fingerprint_files(files);
  };
  for (const auto& job : jobs) {
    const auto& c = job.resolved;
    if (c["data.source"] == "synthetic") continue;
    if (c["data.source"] == "files") add(c["data.paths"].dump(), c["data.paths"].get<std::vector<std::string>>());
    const auto cache = "data.path: " + c["data.path"].get<std::string>();
    if (c["data.source"] == "saelens" && !out.contains(cache))
      out[cache] = sharding::fingerprint_paths(sharding::source_files(to_data_config(c)));
    for (const char* key : {"data.ground_truth", "data.labels"}) {
      const auto file = c[key].get<std::string>();
      if (!file.empty() && file != sharding::kParentLabels) add(std::string(key) + ": " + file, {file});
    }
  }
  return out;
}

// A resume on other data than its jobs were trained on would mix two data sets in one report.
void check_data_unchanged(const nlohmann::json& old_plan, const nlohmann::json& now, const fs::path& plan_file) {
  std::string changed;
  const auto planned = old_plan.value("data_fingerprints", nlohmann::json::object());  // items() of a temporary would dangle
  for (const auto& [paths, before] : planned.items()) {
    if (!now.contains(paths)) continue;
    auto change = sharding::compare_fingerprints(before, now[paths]);
    for (const auto& line : change.changed) changed += "\n    " + line;
    for (const auto& path : change.touched) {
      spdlog::warn("{}: modified since the sweep was planned, with the same size and sampled contents: resuming", path);
    }
  }
  if (changed.empty()) return;
  throw ConfigError(plan_file.string() + ": the data files (activations, ground truth, labels) changed since this sweep "
                                         "was planned, so the results in this directory came from other data:" + changed +
                    "\n  Restore the files, write to another --out, or re-run with --fresh (the old directory is kept "
                    "under a new name)");
}

// A job whose files are damaged runs again instead of crashing the sweep or passing for done: a
// job directory that is not a directory, an unreadable state.json or result.json is kept aside; a done job without a readable result.json
// or metrics.jsonl keeps both aside and is pending again (its checkpoints went with its results,
// so it trains from the start, to the same result: training is deterministic).
void requeue_if_damaged(const fs::path& dir, const nlohmann::json& planned) {
  const auto id = planned["id"].get<std::string>();
  if (!fs::is_directory(dir)) {  // a plain file, a FIFO or a device where the job's directory belongs
    keep_aside(dir);
    spdlog::warn("job {}: {} is not a directory; kept as {}.damaged-N, the job runs from the start", id, dir.string(),
                 dir.filename().string());
    return;
  }
  const auto result = dir / "result.json", metrics = dir / "metrics.jsonl";
  JobState state;
  try {
    state = read_job_state(dir);
  } catch (const std::exception& e) {
    keep_aside(state_file(dir));
    if (fs::exists(result) && !parses_as_json(result)) keep_aside(result);
    spdlog::warn("job {}: {}; kept as {}.damaged-N, the job runs again (from its checkpoint if it has one)", id,
                 e.what(), state_file(dir).filename().string());
    return;
  }
  if (state.phase != JobPhase::Done) {
    if (fs::exists(result) && !parses_as_json(result)) {
      keep_aside(result);
      spdlog::warn("job {}: {} is not valid JSON; kept as result.json.damaged-N, the job runs again", id, result.string());
    }
    return;
  }
  auto damage = damage_in_job_files(dir, planned);
  if (!damage) return;
  for (const auto& file : {result, metrics}) {
    if (fs::exists(file)) keep_aside(file);
  }
  state.phase = JobPhase::Pending;
  state.step = 0;
  state.reason = "trained again: its files were damaged (" + *damage + ")";
  write_job_state(dir, state);
  spdlog::warn("job {} was done but {}; its files are kept as *.damaged-N and it is trained again", id, *damage);
}

}  // namespace sweep::launcher
