// Counts a coverage's matched pairs inside the flagged region.
#include "report/region_share.h"

namespace sweep::launcher {

std::optional<double> share_in_region(const nlohmann::json& coverage, double tau, double rho) {
  const auto& c = coverage;
  double matched = 0, inside = 0;
  for (size_t k = 0; k < c["matched"].size(); ++k) {
    if (!c["matched"][k].get<bool>()) continue;
    matched += 1;
    inside += c["active"][k].get<bool>() && c["cosine"][k].get<double>() > tau && c["ratio"][k].get<double>() > rho;
  }
  if (matched == 0) return std::nullopt;
  return inside / matched;
}

bool both_record_coverage(const nlohmann::json& job, const nlohmann::json& base) {
  return job.contains("absorption_coverage") && base.contains("absorption_coverage");
}

std::optional<double> baseline_share_at_job_thresholds(const nlohmann::json& job, const nlohmann::json& base) {
  const auto& coverage = job["absorption_coverage"];
  return share_in_region(base["absorption_coverage"], coverage["tau"].get<double>(), coverage["rho"].get<double>());
}

}  // namespace sweep::launcher
