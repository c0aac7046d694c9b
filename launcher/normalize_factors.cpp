// Reuses the old plan's factors and estimates the others, one data source at a time.
#include "launcher/normalize_factors.h"

#include <cmath>
#include <map>

#include <spdlog/spdlog.h>

#include "config/config_error.h"
#include "config/job_settings.h"
#include "sharding/data_error.h"
#include "sharding/normalization.h"

namespace sweep::launcher {

void attach_normalize_factors(std::vector<PlannedJob>& jobs, const nlohmann::json& old_plan) {
  std::map<std::string, double> kept, estimated;  // by job id; by data source
  if (old_plan.is_object()) {
    for (const auto& job : old_plan.value("jobs", nlohmann::json::array())) {
      const auto& config = job.value("config", nlohmann::json::object());
      if (config.contains(kNormalizeFactorKey)) kept[job["id"].get<std::string>()] = config[kNormalizeFactorKey];
    }
  }
  for (auto& job : jobs) {
    auto& c = job.resolved;
    if (c["data.normalize"] != "expected_norm") continue;
    if (auto it = kept.find(job.id); it != kept.end()) {
      c[kNormalizeFactorKey] = it->second;
      continue;
    }
    nlohmann::json source = nlohmann::json::object();  // every data.* setting names the rows
    for (const auto& [key, value] : c.items()) {
      if (key.rfind("data.", 0) == 0) source[key] = value;
    }
    auto [it, fresh] = estimated.try_emplace(source.dump(), 0.0);
    if (fresh) {
      try {
        const auto config = to_data_config(c);
        const auto data = sharding::open_dataset(config);
        it->second = sharding::expected_norm_factor(*data);
        spdlog::info("data.normalize = \"expected_norm\": rows of {} scaled by {:.6g}, to a mean norm of sqrt({}) = {:.4g}",
                     sharding::source_description(config), it->second,
                     data->d_in(), std::sqrt(static_cast<double>(data->d_in())));
      } catch (const sharding::DataError& e) {
        throw ConfigError(e.what());
      }
    }
    c[kNormalizeFactorKey] = it->second;
  }
}

}  // namespace sweep::launcher
