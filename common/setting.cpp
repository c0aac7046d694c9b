// The common range checks of a setting, each saying what is allowed when a value is not.
#include "common/setting.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sweep::setting_checks {
namespace {

using nlohmann::json;

// A bound as a message prints it: whole numbers in full (16777216, not 1.67772e+07).
std::string number(double v) {
  std::ostringstream s;
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    s << static_cast<long long>(v);
  else
    s << v;
  return s.str();
}

}  // namespace

SettingCheck none() { return [](const json&) { return std::string(); }; }
SettingCheck at_least(double lo) {
  return [lo](const json& v) { return v.get<double>() >= lo ? "" : "must be >= " + number(lo); };
}
SettingCheck above(double lo) {
  return [lo](const json& v) { return v.get<double>() > lo ? "" : "must be > " + number(lo); };
}
SettingCheck open_range(double lo, double hi) {
  return [lo, hi](const json& v) {
    double x = v.get<double>();
    return x > lo && x < hi ? "" : "must be in (" + number(lo) + ", " + number(hi) + ")";
  };
}
SettingCheck half_open(double lo, double hi) {
  return [lo, hi](const json& v) {
    double x = v.get<double>();
    return x > lo && x <= hi ? "" : "must be in (" + number(lo) + ", " + number(hi) + "]";
  };
}
SettingCheck right_open(double lo, double hi) {
  return [lo, hi](const json& v) {
    double x = v.get<double>();
    return x >= lo && x < hi ? "" : "must be in [" + number(lo) + ", " + number(hi) + ")";
  };
}
SettingCheck closed_range(double lo, double hi) {
  return [lo, hi](const json& v) {
    double x = v.get<double>();
    return x >= lo && x <= hi ? "" : "must be in [" + number(lo) + ", " + number(hi) + "]";
  };
}
SettingCheck one_of(std::vector<std::string> allowed) {
  return [allowed](const json& v) {
    auto s = v.get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return std::string();
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
    return "must be one of " + list;
  };
}

}  // namespace sweep::setting_checks
