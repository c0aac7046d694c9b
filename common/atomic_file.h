// Whole files written atomically (a temporary file per writer, fsync, rename), so that a crash or
// a full disk never leaves a half-written state file, and JSON read back with the file's name in
// every error. No LibTorch: the report and the launcher's sweep state use it too.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep {

void write_file_atomic(const std::filesystem::path& file, const std::string& contents);
// Several files replaced together: every one is written to its temporary first, and only when all
// of them are on disk are they renamed into place; on failure none is replaced.
void write_files_atomic(const std::vector<std::pair<std::filesystem::path, std::string>>& files);
void write_json_atomic(const std::filesystem::path& file, const nlohmann::json& value);
// Throws std::runtime_error naming the file when it cannot be read or is not JSON.
nlohmann::json read_json(const std::filesystem::path& file);

}  // namespace sweep
