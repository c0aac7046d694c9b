// Turns a planned job's resolved dotted-key configuration into the worker's typed JobConfig.
#pragma once

#include "launcher/grid.h"
#include "worker/job_config.h"

namespace sweep::launcher {

worker::JobConfig to_job_config(const PlannedJob& job);
// The data settings alone (also used by `sweep data export` and the pre-flight data check).
sharding::DataConfig to_data_config(const nlohmann::json& resolved);

}  // namespace sweep::launcher
