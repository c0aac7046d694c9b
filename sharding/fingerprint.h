// A cheap fingerprint of activation files, so that a resume can tell that its data changed:
// each shard's path, size, modification time and a hash of its header and of sampled blocks.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::sharding {

// [{"path", "bytes", "mtime_ns", "sample_hash"}, ...] for the files the globs match (sorted).
// Reads at most about 200 KiB per shard. Throws DataError as FileActivationSource does.
nlohmann::json fingerprint_files(const std::vector<std::string>& globs);
// The same for files named one by one (no globbing).
nlohmann::json fingerprint_paths(const std::vector<std::filesystem::path>& files);

struct FingerprintChange {
  std::vector<std::string> changed;  // "PATH: what changed", for content that differs
  std::vector<std::string> touched;  // paths whose modification time alone changed
};

// What differs between an earlier fingerprint and a new one of the same globs.
FingerprintChange compare_fingerprints(const nlohmann::json& before, const nlohmann::json& now);

}  // namespace sweep::sharding
