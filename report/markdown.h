// report.md: the verdicts in words, then the job table, for people reading a terminal or a
// code review.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

std::string render_markdown(const nlohmann::json& report);

}  // namespace sweep::launcher
