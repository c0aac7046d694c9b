// One setting of a sweep file, declared once: its dotted key, type, default, range check, help and
// the typed member it fills. The schema (config/config_schema.cpp) holds the shared ones; an
// architecture or training penalty declares its own in its file (sae/architecture.h,
// sae/penalty.h), and the schema takes them from there. A row made by field() takes its type and
// default from the member and the struct's initializer, so neither is written twice.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <string>
#include <type_traits>
#include <typeindex>
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
  // The struct whose member this setting fills (typeid(void): none; a penalty that reads its
  // settings by key), and how: fill writes a checked value into a struct of that type.
  std::type_index target = typeid(void);
  std::function<void(void* target, const nlohmann::json& value)> fill = {};
};

// A problem across a job's settings: the key at fault and what is wrong, for the sweep file's error.
struct SettingProblem {
  std::string key, message;
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

// The kind of a member type.
template <typename T>
constexpr ValueKind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return ValueKind::Bool;
  else if constexpr (std::is_integral_v<T>) return ValueKind::Int;
  else if constexpr (std::is_floating_point_v<T>) return ValueKind::Float;
  else if constexpr (std::is_same_v<T, std::string>) return ValueKind::String;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return ValueKind::StringList;
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return ValueKind::IntList;
  else {
    static_assert(std::is_same_v<T, std::vector<double>>, "no ValueKind for this member type");
    return ValueKind::FloatList;
  }
}

// The optional parts of a bound row.
struct SettingFlags {
  bool affects_results = true;
  bool id_omits_default = false;
};

// A setting that fills `member` of S, its default the member's in a value-initialised S.
template <typename S, typename T>
Setting field(std::string key, T S::*member, SettingCheck check, std::string help, SettingFlags flags = {}) {
  return {std::move(key),     kind_of<T>(), nlohmann::json(S{}.*member), std::move(check), std::move(help),
          flags.affects_results, flags.id_omits_default, typeid(S),
          [member](void* s, const nlohmann::json& v) { static_cast<S*>(s)->*member = v.get<T>(); }};
}

// A setting that fills an enum `member` of S from one of `names` (in the order its check lists them).
template <typename S, typename E>
Setting enum_field(std::string key, E S::*member, std::vector<std::pair<std::string, E>> names, std::string help,
                   SettingFlags flags = {}) {
  std::vector<std::string> allowed;
  nlohmann::json default_name;
  for (const auto& [name, value] : names) {
    allowed.push_back(name);
    if (value == S{}.*member) default_name = name;
  }
  return {std::move(key),          ValueKind::String, default_name, setting_checks::one_of(allowed), std::move(help),
          flags.affects_results, flags.id_omits_default, typeid(S),
          [member, names](void* s, const nlohmann::json& v) {
            for (const auto& [name, value] : names) {
              if (v == name) static_cast<S*>(s)->*member = value;
            }
          }};
}

// Fills every member of `target` that a row of `rows` binds, from `values` (dotted keys, checked).
// Returns how many rows it applied.
template <typename S>
size_t fill_settings(const std::vector<Setting>& rows, const nlohmann::json& values, S& target) {
  size_t applied = 0;
  for (const auto& row : rows) {
    if (row.target != std::type_index(typeid(S))) continue;
    row.fill(&target, values.at(row.key));
    ++applied;
  }
  return applied;
}

}  // namespace sweep
