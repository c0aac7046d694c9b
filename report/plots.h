// The report's plots as Vega-Lite specifications with their data inline: L0 against explained
// variance with the Pareto front, each key metric against each swept param, training curves.
#pragma once

#include <nlohmann/json.hpp>

namespace sweep::launcher {

// [{"id", "title", "caption", "spec"}, ...]; only plots that have data to show.
nlohmann::json plot_specs(const nlohmann::json& report);

}  // namespace sweep::launcher
