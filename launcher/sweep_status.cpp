// Reads the sweep directory without taking any lock: state files are replaced atomically, so a
// running sweep can be inspected at any time.
#include "launcher/sweep_status.h"

#include <cmath>
#include <map>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "launcher/config_error.h"
#include "launcher/job_state.h"
#include "launcher/progress_display.h"
#include "worker/job_files.h"

namespace sweep::launcher {
namespace {

std::string age_text(double heartbeat) {
  if (heartbeat <= 0) return "-";
  double age = std::max(0.0, now_seconds() - heartbeat);
  if (age < 120) return fmt::format("{:.0f}s ago", age);
  if (age < 7200) return fmt::format("{:.0f}m ago", age / 60);
  return fmt::format("{:.1f}h ago", age / 3600);
}

}  // namespace

std::string render_status(const std::filesystem::path& out) {
  auto plan_file = out / "plan.json";
  if (!std::filesystem::exists(plan_file)) {
    throw ConfigError(out.string() + " is not a sweep output directory (it has no plan.json); pass the --out of a sweep");
  }
  auto plan = worker::read_json(plan_file);
  std::string text = fmt::format("sweep {} in {}\n", plan.value("sweep", "?"), out.string());
  text += fmt::format("{:<13} {:<10} {:>15} {:>7} {:>12} {:>8}  {}\n", "job", "state", "step", "%", "heartbeat",
                      "attempts", "params");
  std::map<std::string, int> totals;
  for (const auto& job : plan.at("jobs")) {
    auto dir = out / "jobs" / job.at("id").get<std::string>();
    std::string phase;
    JobState state;
    try {
      state = read_job_state(dir);
      phase = phase_name(state.phase);
    } catch (const std::exception& e) {
      phase = "unreadable";
    }
    int64_t steps = state.steps > 0 ? state.steps : job.at("config").value("train.steps", int64_t{0});
    double percent = steps > 0 ? 100.0 * static_cast<double>(state.step) / static_cast<double>(steps) : 0.0;
    ++totals[phase];
    text += fmt::format("{:<13} {:<10} {:>15} {:>6.1f}% {:>12} {:>8}  {}\n", job.at("id").get<std::string>(), phase,
                        fmt::format("{}/{}", state.step, steps), percent, age_text(state.heartbeat), state.attempts,
                        params_text(job.at("params")));
    if (!state.reason.empty()) text += fmt::format("{:<13} reason: {}\n", "", state.reason);
  }
  std::string summary;
  for (const auto& [phase, count] : totals) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", count, phase);
  text += fmt::format("{} jobs: {}\n", plan.at("jobs").size(), summary);
  return text;
}

int print_status(const std::filesystem::path& out) {
  try {
    std::fputs(render_status(out).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
}

}  // namespace sweep::launcher
