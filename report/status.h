// `sweep status <out>`: a table of the sweep's jobs (id, swept params, state, progress, last
// heartbeat, attempts) and totals, read from plan.json and the jobs' state.json files.
#pragma once

#include <filesystem>
#include <string>

namespace sweep::launcher {

// The table as text; throws ConfigError when `out` holds no plan.json.
std::string render_status(const std::filesystem::path& out);
int print_status(const std::filesystem::path& out);

}  // namespace sweep::launcher
