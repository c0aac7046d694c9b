// Fingerprints by pread: the first 64 KiB (the header and the first rows), 32 blocks of 4 KiB at
// evenly spaced offsets and the last 4 KiB, hashed with FNV-1a.
#include "sharding/fingerprint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "common/fnv_hash.h"
#include "sharding/data_error.h"
#include "sharding/file_source.h"

namespace sweep::sharding {
namespace {

using nlohmann::json;

constexpr uint64_t kHead = 64 * 1024, kBlock = 4 * 1024, kBlocks = 32;

json fingerprint_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO: no wait for a writer
  if (fd < 0) throw DataError(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t hash = kFnvOffset;
  std::vector<char> buffer(kHead);
  auto read_at = [&](uint64_t offset, uint64_t length) {
    ssize_t got = ::pread(fd, buffer.data(), std::min(length, size - std::min(size, offset)), static_cast<off_t>(offset));
    if (got > 0) fnv1a_bytes(hash, buffer.data(), static_cast<size_t>(got));
  };
  read_at(0, kHead);
  for (uint64_t b = 0; b < kBlocks && size > kHead; ++b) read_at(kHead + (size - kHead) / kBlocks * b, kBlock);
  if (size > kBlock) read_at(size - kBlock, kBlock);
  ::close(fd);
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return {{"path", path.string()}, {"bytes", size}, {"mtime_ns", mtime_ns}, {"sample_hash", hex_digits(hash)}};
}

}  // namespace

json fingerprint_files(const std::vector<std::string>& globs) {
  json shards = json::array();
  for (const auto& path : expand_globs(globs)) shards.push_back(fingerprint_file(path));
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
