// Whole files written atomically (a temporary file per writer, fsync, rename), so that a crash or
// a full disk never leaves a half-written state file, and JSON read back with the file's name in
// every error. No LibTorch: the report and the launcher's sweep state use it too.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace sweep {

void write_file_atomic(const std::filesystem::path& file, const std::string& contents);
void write_json_atomic(const std::filesystem::path& file, const nlohmann::json& value);
nlohmann::json read_json(const std::filesystem::path& file);

}  // namespace sweep
