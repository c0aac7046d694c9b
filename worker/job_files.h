// The files of one job directory: result.json, metrics.jsonl and the SAELens export in sae/.
// Whole files are written atomically (temporary file, fsync, rename).
#pragma once

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "sae/saelens_export.h"

namespace sweep::worker {

void write_file_atomic(const std::filesystem::path& file, const std::string& contents);
void write_json_atomic(const std::filesystem::path& file, const nlohmann::json& value);
nlohmann::json read_json(const std::filesystem::path& file);
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
