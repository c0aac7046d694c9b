// Trains each missing probe file from the data's labelled training rows and checks existing ones
// against the fingerprints of the files they were trained on.
#include "launcher/probes.h"

#include <chrono>
#include <set>

#include <spdlog/spdlog.h>

#include "common/fnv_hash.h"
#include "config/config_error.h"
#include "config/job_settings.h"
#include "sharding/data_error.h"
#include "sharding/dataset.h"
#include "sharding/fingerprint.h"
#include "sharding/labels.h"
#include "worker/probe_file.h"

namespace sweep::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What decides the probes: every data setting (the rows, their split and labels) and how many
// labelled rows they train on.
json probe_settings(const json& resolved) {
  json out = json::object();
  for (const auto& [key, value] : resolved.items()) {
    if (key.rfind("data.", 0) == 0 || key == "probe.train_rows") out[key] = value;
  }
  return out;
}

// The files the probes were trained on: the activation files and a labels file, fingerprinted.
json fingerprints(const json& resolved) {
  json out = json::object();
  if (resolved["data.source"] != "synthetic") {
    out[data_source_key(resolved)] =
        sharding::fingerprint_paths(sharding::source_files(to_data_config(resolved)));
  }
  const auto labels = resolved["data.labels"].get<std::string>();
  if (labels != sharding::kParentLabels) out["data.labels"] = sharding::fingerprint_files({labels});
  return out;
}

void check_trained_on(const fs::path& file, const json& resolved) {
  const auto probes = worker::read_probe_file(file);
  json before;
  try {
    before = json::parse(probes.metadata.at("trained_on"));
  } catch (const std::exception&) {
    throw ConfigError(file.string() + ": says nothing of the data it was trained on; remove it and re-run to train the "
                                      "probes again");
  }
  std::string changed;
  const json now = fingerprints(resolved);
  for (const auto& [key, files] : now.items()) {
    if (!before.contains(key)) continue;
    for (const auto& line : sharding::compare_fingerprints(before[key], files).changed) changed += "\n    " + line;
  }
  if (changed.empty()) return;
  throw ConfigError(file.string() + ": these probes were trained on files that have changed since:" + changed +
                    "\n  Restore the files, write to another --out, or re-run with --fresh (the old directory is kept "
                    "under a new name)");
}

void train_probe_file(const fs::path& file, const json& resolved) {
  const auto started = std::chrono::steady_clock::now();
  worker::ProbeFile probes;
  try {
    auto data = sharding::open_dataset(to_data_config(resolved));
    probes = worker::train_probes(*data, resolved["probe.train_rows"].get<int64_t>());
  } catch (const sharding::DataError& e) {
    throw ConfigError(std::string("data.labels = ") + resolved["data.labels"].dump() + ": " + e.what());
  }
  if (probes.metadata.at("train_rows") == "0") {
    throw ConfigError(std::string("data.labels = ") + resolved["data.labels"].dump() +
                      ": labels none of the training rows (every row outside the held-out ones has class -1), so no "
                      "probe can be trained\nHINT: check that the labels belong to these activations");
  }
  probes.metadata["trained_on"] = fingerprints(resolved).dump();
  probes.metadata["settings"] = probe_settings(resolved).dump();
  worker::write_probe_file(file, probes);
  spdlog::info("probes: trained {} probe(s) on {} labelled training rows in {:.1f} s: {}", probes.names.size(),
               probes.metadata.at("train_rows"),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), file.string());
}

}  // namespace

fs::path probe_file_for(const fs::path& out, const json& resolved) {
  if (resolved.value("data.labels", std::string()).empty()) return {};
  const std::string text = probe_settings(resolved).dump();
  uint64_t hash = kFnvOffset;
  fnv1a_bytes(hash, text.data(), text.size());
  return out / "probes" / (hex_digits(hash).substr(0, 12) + ".safetensors");
}

void prepare_probes(const fs::path& out, const std::vector<PlannedJob>& jobs) {
  std::set<fs::path> done;
  for (const auto& job : jobs) {
    const auto file = probe_file_for(out, job.resolved);
    if (file.empty() || !done.insert(file).second) continue;
    if (fs::exists(file)) {
      check_trained_on(file, job.resolved);
      spdlog::info("probes: reusing {}", file.string());
    } else {
      train_probe_file(file, job.resolved);
    }
  }
}

}  // namespace sweep::launcher
