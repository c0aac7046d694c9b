// One setting of a sweep file, declared once: its dotted key, type, default, range check and help.
// The schema (config/config_schema.cpp) holds the shared ones; a training penalty declares its own
// in its file (sae/penalty.h), and the schema takes them from there.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep {

enum class ValueKind { Int, Float, Bool, String, StringList, IntList, FloatList };

// Empty when the value is fine; otherwise what is wrong and what is allowed.
using SettingCheck = std::function<std::string(const nlohmann::json&)>;

struct Setting {
  std::string key;  // "section.name" or a top-level "name"
  ValueKind kind;
  nlohmann::json default_value;
  SettingCheck check;
  std::string help;
  // False for settings that change how a job runs but not what it computes (ranks, checkpoints,
  // retries): they are left out of job ids and may change when a sweep is resumed.
  bool affects_results = true;
  // Left out of job ids while at its default: a setting added after ids existed keeps them.
  bool id_omits_default = false;
};

// The common range checks.
namespace setting_checks {
SettingCheck none();
SettingCheck at_least(double lo);
SettingCheck above(double lo);
SettingCheck open_range(double lo, double hi);    // (lo, hi)
SettingCheck half_open(double lo, double hi);     // (lo, hi]
SettingCheck right_open(double lo, double hi);    // [lo, hi)
SettingCheck closed_range(double lo, double hi);  // [lo, hi]
SettingCheck one_of(std::vector<std::string> allowed);
}  // namespace setting_checks

}  // namespace sweep
