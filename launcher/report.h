// The sweep report: report.json (every job with params, status and metrics) and report.md
// (one table, differences to the baseline, a loud line for every penalty that never fired).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// results: the result.json objects of every job, in plan order.
nlohmann::json build_report(const std::string& sweep_name, const std::vector<nlohmann::json>& results);
std::string render_markdown(const nlohmann::json& report);
void write_report(const std::filesystem::path& out_dir, const nlohmann::json& report);

}  // namespace sweep::launcher
