// Every setting a sweep file may hold: dotted key, type, default and range check, in one table
// (the shared rows here, each training penalty's from its own file). Parsing, --set, grid keys,
// did-you-mean and defaults all read this table.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/setting.h"

namespace sweep::launcher {

// A row of the table (common/setting.h): key, type, default, check, help.
using KeySpec = Setting;

const std::vector<KeySpec>& config_schema();
const KeySpec* find_key(const std::string& key);
// The closest known key (edit distance), for "did you mean ...?".
std::optional<std::string> closest_key(const std::string& key);
// The closest section name, for a misspelt [section].
std::optional<std::string> closest_section(const std::string& name);
// Sections that may appear in a sweep file ("data", "sae", ...), grid included.
bool is_section(const std::string& name);
// Their names, "data, sae, ...", for messages.
std::string section_names();
// Keys that shape a job (not grid.* nor the slurm.* settings of `sweep submit`).
bool is_job_setting(const std::string& key);
// A resolved configuration holding every job setting at its default.
nlohmann::json default_config();
// Seconds in a Slurm time limit "HH:MM:SS" or "D-HH:MM:SS"; nullopt when malformed.
std::optional<int64_t> slurm_time_seconds(const std::string& text);
const char* kind_name(ValueKind kind);

}  // namespace sweep::launcher
