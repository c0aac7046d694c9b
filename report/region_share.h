// The share of the latent pairs matched to true (parent, child) features that lie inside the
// absorption penalty's flagged region at given thresholds: both latents active, decoder cosine
// above tau and co-firing ratio above rho. A job's result records each matched pair's cosine,
// ratio and activity at the end of training ("absorption_coverage"), so the share can be judged at
// any thresholds: a baseline's at the thresholds of the penalised point it is compared with.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// nullopt when the coverage holds no matched pair.
std::optional<double> share_in_region(const nlohmann::json& coverage, double tau, double rho);

// Whether a penalised job and its baseline (results, or report.json's jobs) both record their
// coverage, so that the baseline's share can be judged at the job's thresholds.
bool both_record_coverage(const nlohmann::json& job, const nlohmann::json& base);
// The baseline's share at the thresholds the job's coverage was recorded at (both_record_coverage);
// nullopt when the baseline has no matched pair.
std::optional<double> baseline_share_at_job_thresholds(const nlohmann::json& job, const nlohmann::json& base);

}  // namespace sweep::launcher
