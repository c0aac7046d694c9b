// The report's verdicts as data: whether the sweep can tell effects from seed noise, each
// penalised grid point's effects with intervals, penalties that never fired, points equal to
// their baseline within noise, the best point per objective, and the jobs that did not finish.
#pragma once

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// The default of report.ev_tolerance: the single best point per objective keeps its mean explained
// variance at most this much below its baseline's.
constexpr double kDefaultEvTolerance = 0.01;

// report: the report so far (jobs, points with replica statistics, absorption_never_fired,
// settings.ev_tolerance). The
// tolerances and rules used are part of the result, so the sentences can say them.
nlohmann::json verdicts(const nlohmann::json& report);

}  // namespace sweep::launcher
