// The files of one job directory: metrics.jsonl and the SAELens export in sae/ (result.json and
// the rest are whole files written with common/atomic_file.h).
#pragma once

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "sae/saelens_export.h"

namespace sweep::worker {

void write_saelens(const std::filesystem::path& dir, const sae::SaeLensExport& exported);

// metrics.jsonl: one JSON object per line, flushed after each. A resumed job keeps the first
// `keep_bytes` (what its checkpoint had logged) and drops anything logged after it.
class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& file, uint64_t keep_bytes = 0);
  void append(const nlohmann::json& line);  // throws std::runtime_error naming the file
  uint64_t bytes() const { return bytes_; }

 private:
  std::filesystem::path file_;
  std::ofstream out_;
  uint64_t bytes_ = 0;
};

}  // namespace sweep::worker
