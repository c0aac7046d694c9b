// Reads the sweep directory without taking any lock: state files are replaced atomically, so a
// running sweep can be inspected at any time.
#include "report/status.h"

#include <cmath>
#include <map>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/exit_codes.h"
#include "common/job_state.h"
#include "config/config_error.h"
#include "report/files.h"
#include "report/format.h"

namespace sweep::launcher {
namespace {

std::string age_text(double heartbeat) {
  if (heartbeat <= 0) return "-";
  double age = std::max(0.0, now_seconds() - heartbeat);
  if (age < 120) return fmt::format("{:.0f}s ago", age);
  if (age < 7200) return fmt::format("{:.0f}m ago", age / 60);
  return fmt::format("{:.1f}h ago", age / 3600);
}

std::string render_plan_status(const std::filesystem::path& out, const nlohmann::json& plan) {
  std::string text = fmt::format("sweep {} in {}\n", plan.value("sweep", "?"), out.string());
  text += fmt::format("{:<13} {:<10} {:>15} {:>7} {:>9} {:>8} {:>9} {:>6} {:>6} {:>12} {:>8}  {}\n", "job", "state",
                      "step", "%", "tok/s", "ETA", "loss", "L0", "pairs", "heartbeat", "attempts", "params");
  std::map<std::string, int> totals;
  double steps_left = 0, steps_per_second = 0;  // over unfinished jobs; over running ones
  for (const auto& job : plan.at("jobs")) {
    auto dir = out / "jobs" / job.at("id").get<std::string>();
    const auto& config = job.at("config");
    std::string phase;
    JobState state;
    try {
      state = read_job_state(dir);
      phase = phase_name(state.phase);
    } catch (const std::exception& e) {
      phase = "unreadable";
    }
    // Damaged as the report says it (one reader of a job's files for both): retrained by a re-run.
    if (auto damage = damage_in_job_files(dir, job)) {
      phase = "damaged";
      state.reason = *damage + "; a re-run trains it again";
    }
    const bool running = state.phase == JobPhase::Running;
    if (running && !owner_alive(state, config.at("run.stale_after_seconds").get<double>())) {
      phase = "stale";  // its process is gone or silent: the next run of the sweep resumes it
    }
    int64_t steps = state.steps > 0 ? state.steps : config.value("train.steps", int64_t{0});
    double percent = steps > 0 ? 100.0 * static_cast<double>(state.step) / static_cast<double>(steps) : 0.0;
    ++totals[phase];
    if (state.phase != JobPhase::Done && state.phase != JobPhase::Failed) {
      steps_left += static_cast<double>(steps - state.step);
    }
    const auto& p = state.progress;
    const bool measured = p.tokens_per_second > 0;
    if (running && measured && phase != "stale") {
      steps_per_second += p.tokens_per_second / config.value("train.batch_size", 1.0);
    }
    text += fmt::format("{:<13} {:<10} {:>15} {:>6.1f}% {:>9} {:>8} {:>9} {:>6} {:>6} {:>12} {:>8}  {}\n",
                        job.at("id").get<std::string>(), phase, fmt::format("{}/{}", state.step, steps), percent,
                        measured ? fmt::format("{:.3g}", p.tokens_per_second) : "-",
                        running && measured ? format_duration(p.eta_seconds) : "-",
                        measured ? fmt::format("{:.4g}", p.loss) : "-", measured ? fmt::format("{:.1f}", p.l0) : "-",
                        measured ? std::to_string(p.flagged_pairs) : "-", age_text(state.heartbeat), state.attempts,
                        params_text(job.at("params")));
    if (!state.reason.empty()) text += fmt::format("{:<13} reason: {}\n", "", state.reason);
  }
  std::string summary;
  for (const auto& [phase, count] : totals) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", count, phase);
  text += fmt::format("{} jobs: {}", plan.at("jobs").size(), summary);
  if (steps_left > 0 && steps_per_second > 0) {
    text += fmt::format("; ETA {} at the running jobs' speed", format_duration(steps_left / steps_per_second));
  }
  return text + "\n";
}

}  // namespace

std::string render_status(const std::filesystem::path& out) {
  auto plan_file = out / "plan.json";
  if (!std::filesystem::exists(plan_file)) {
    throw ConfigError(out.string() + " is not a sweep output directory (it has no plan.json); pass the --out of a sweep");
  }
  try {
    return render_plan_status(out, read_json(plan_file));
  } catch (const nlohmann::json::exception& e) {  // JSON, but not a plan
    throw std::runtime_error(plan_file.string() + ": not a sweep plan (" + e.what() + ")");
  }
}

int print_status(const std::filesystem::path& out) {
  try {
    std::fputs(render_status(out).c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
}

}  // namespace sweep::launcher
