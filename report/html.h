// report.html: one self-contained page (summary, verdicts, sortable job table, Vega-Lite plots,
// the Vega runtime and its licences inlined) that opens offline and makes no network request.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace sweep::launcher {

std::string render_html(const nlohmann::json& report);

}  // namespace sweep::launcher
