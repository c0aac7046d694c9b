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

// metrics.jsonl: one JSON object per line, flushed after each.
class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& file);
  void append(const nlohmann::json& line);

 private:
  std::ofstream out_;
};

}  // namespace sweep::worker
