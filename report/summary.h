// The report's summary facts (jobs done, failed, preempted, training time, hardware, ranks) as
// label/value pairs, for the top of report.md and report.html.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

std::vector<std::pair<std::string, std::string>> summary_items(const nlohmann::json& report);

}  // namespace sweep::launcher
