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

// The thresholds a coverage was recorded at: {tau, rho}.
std::pair<double, double> region_thresholds(const nlohmann::json& coverage);

}  // namespace sweep::launcher
