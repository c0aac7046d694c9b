// data.normalize's factors (sharding/normalization.h): estimated once per data source when a
// sweep's plan is first written and kept in plan.json, in each job's configuration, so that every
// job and every resume scales its rows by the same factor.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "config/grid.h"

namespace sweep::launcher {

// Sets the factor in the configuration of each job with data.normalize = "expected_norm": the old
// plan's for a job it holds one for (null: a new sweep), else estimated from the job's data.
// Throws ConfigError when a source's rows cannot be scaled (all zero).
void attach_normalize_factors(std::vector<PlannedJob>& jobs, const nlohmann::json& old_plan);

}  // namespace sweep::launcher
