// Fingerprints of the data files: each file's size and sampled contents (common/file_sample.h), and
// what changed between two of them.
#include "sharding/fingerprint.h"

#include <map>

#include "common/file_sample.h"
#include "sharding/data_error.h"
#include "sharding/file_source.h"

namespace sweep::sharding {
namespace {

using nlohmann::json;

json fingerprint_file(const std::filesystem::path& path) {
  try {
    const auto sample = sample_file(path);
    return {{"path", path.string()}, {"bytes", sample.bytes}, {"mtime_ns", sample.mtime_ns}, {"sample_hash", sample.hash}};
  } catch (const std::runtime_error& e) {
    throw DataError(e.what());
  }
}

}  // namespace

json fingerprint_files(const std::vector<std::string>& globs) { return fingerprint_paths(expand_globs(globs)); }

json fingerprint_paths(const std::vector<std::filesystem::path>& files) {
  json shards = json::array();
  for (const auto& path : files) shards.push_back(fingerprint_file(path));
  return shards;
}

FingerprintChange compare_fingerprints(const json& before, const json& now) {
  FingerprintChange change;
  std::map<std::string, json> old_by_path, new_by_path;
  for (const auto& shard : before) old_by_path[shard.at("path").get<std::string>()] = shard;
  for (const auto& shard : now) new_by_path[shard.at("path").get<std::string>()] = shard;
  for (const auto& [path, old_shard] : old_by_path) {
    auto it = new_by_path.find(path);
    if (it == new_by_path.end()) {
      change.changed.push_back(path + ": no longer there (or no longer matched by data.paths)");
      continue;
    }
    const json& shard = it->second;
    if (shard["bytes"] != old_shard["bytes"]) {
      change.changed.push_back(path + ": " + old_shard["bytes"].dump() + " bytes before, " + shard["bytes"].dump() + " now");
    } else if (shard["sample_hash"] != old_shard["sample_hash"]) {
      change.changed.push_back(path + ": same size, different contents");
    } else if (shard["mtime_ns"] != old_shard["mtime_ns"]) {
      change.touched.push_back(path);
    }
  }
  for (const auto& [path, shard] : new_by_path) {
    if (!old_by_path.count(path)) change.changed.push_back(path + ": a new file matched by data.paths");
  }
  // The same files in another order are other rows at every step (the order is the data's).
  if (change.changed.empty() && old_by_path.size() == before.size() && new_by_path.size() == now.size()) {
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i].at("path") != now[i].at("path")) {
        change.changed.push_back("the files are read in another order (data.paths order, each glob's matches sorted): " +
                                 before[i].at("path").get<std::string>() + " was file " + std::to_string(i + 1) + ", now " +
                                 now[i].at("path").get<std::string>() + " is");
        break;
      }
    }
  }
  return change;
}

}  // namespace sweep::sharding
