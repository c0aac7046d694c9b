// Number, param and job-name formatting for the report's people-facing files.
#include "report/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <spdlog/fmt/fmt.h>

namespace sweep::launcher {

std::string format_number(const char* format, const nlohmann::json& value) {
  if (!value.is_number() || !std::isfinite(value.get<double>())) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value.get<double>());
  return buf;
}

std::string format_signed(const char* format, double value) {
  return (value >= 0 ? "+" : "") + format_number(format, value);
}

std::string param_value(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string job_label(const nlohmann::json& job) {
  std::string label = job["baseline"].get<bool>() ? "baseline" : "";
  // An explicit grid point's label stands for the settings it made.
  const auto point_keys = job.value("label_keys", nlohmann::json::array());
  const std::string point_label = job.value("label", std::string());
  if (!point_label.empty()) label += (label.empty() ? "" : ", ") + point_label;
  for (const auto& [key, value] : job["params"].items()) {
    if (key == "absorption.enabled" || std::find(point_keys.begin(), point_keys.end(), key) != point_keys.end()) continue;
    label += (label.empty() ? "" : ", ") + key + "=" + param_value(value);
  }
  return label.empty() ? "(no swept params)" : label;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<long long>(seconds + 0.5);
  if (s < 3600) return fmt::format("{}:{:02d}", s / 60, s % 60);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

std::string params_text(const nlohmann::json& params) {
  std::string text;
  for (const auto& [key, value] : params.items()) {
    text += (text.empty() ? "" : " ") + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return text.empty() ? "-" : text;
}

}  // namespace sweep::launcher
