// The report's verdicts as data: penalties that never fired, jobs whose metrics equal their
// baseline's within noise, the best job for each objective, and the jobs that did not finish.
#pragma once

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// report: the report so far (jobs with baseline_id and metrics, absorption_never_fired). The
// tolerances and rules used are part of the result, so the sentences can say them.
nlohmann::json verdicts(const nlohmann::json& report);

}  // namespace sweep::launcher
