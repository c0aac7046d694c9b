// state.json as JSON, and the clock and host name that heartbeats and owners use.
#include "common/job_state.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "common/atomic_file.h"

namespace sweep {
namespace {

const char* const kPhaseNames[] = {"pending", "running", "done", "failed", "preempted"};

}  // namespace

const char* phase_name(JobPhase phase) { return kPhaseNames[static_cast<int>(phase)]; }

nlohmann::json to_json(const JobState& s) {
  nlohmann::json j = {{"state", phase_name(s.phase)}, {"attempts", s.attempts}, {"failures", s.failures},
                      {"step", s.step},               {"steps", s.steps}};
  if (!s.owner.empty()) {
    j["owner"] = s.owner;
    j["host"] = s.host;
    j["pid"] = s.pid;
    j["world_rank"] = s.world_rank;
    j["heartbeat"] = s.heartbeat;
  }
  if (s.progress.tokens_per_second > 0) {
    const auto& p = s.progress;
    j["progress"] = {{"tokens_per_second", p.tokens_per_second}, {"eta_seconds", p.eta_seconds},
                     {"loss", p.loss}, {"l0", p.l0}, {"flagged_pairs", p.flagged_pairs}};
  }
  if (!s.reason.empty()) j["reason"] = s.reason;
  return j;
}

JobState job_state_from_json(const nlohmann::json& j) {
  JobState s;
  auto name = j.at("state").get<std::string>();
  bool known = false;
  for (int i = 0; i < 5; ++i) {
    if (name == kPhaseNames[i]) {
      s.phase = static_cast<JobPhase>(i);
      known = true;
    }
  }
  if (!known) throw std::runtime_error("unknown state \"" + name + "\"");
  s.attempts = j.value("attempts", 0);
  s.failures = j.value("failures", 0);
  s.owner = j.value("owner", "");
  s.host = j.value("host", "");
  s.pid = j.value("pid", 0);
  s.world_rank = j.value("world_rank", 0);
  s.heartbeat = j.value("heartbeat", 0.0);
  s.step = j.value("step", int64_t{0});
  s.steps = j.value("steps", int64_t{0});
  if (j.contains("progress")) {
    const auto& p = j["progress"];
    s.progress = {s.step, s.steps, p.value("tokens_per_second", 0.0), p.value("eta_seconds", 0.0),
                  p.value("loss", 0.0), p.value("l0", 0.0), p.value("flagged_pairs", int64_t{0})};
  }
  s.reason = j.value("reason", "");
  return s;
}

std::filesystem::path state_file(const std::filesystem::path& job_dir) { return job_dir / "state.json"; }

JobState read_job_state(const std::filesystem::path& job_dir) {
  auto file = state_file(job_dir);
  if (!std::filesystem::exists(file)) return {};
  try {
    return job_state_from_json(read_json(file));
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what() + " (delete the file to run the job again)");
  }
}

void write_job_state(const std::filesystem::path& job_dir, const JobState& state) {
  write_json_atomic(state_file(job_dir), to_json(state));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string this_host() {
  char name[256] = {0};
  ::gethostname(name, sizeof name - 1);
  return name;
}

namespace {

// Field 22 of /proc/<pid>/stat (after the command name in parentheses, which may hold spaces), or "".
std::string start_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (fields >> field); ++i) {
    if (i == 22) return field;
  }
  return "";
}

}  // namespace

std::string owner_name(int pid) {
  const auto start = start_ticks(pid);
  return this_host() + ":" + std::to_string(pid) + (start.empty() ? "" : "@" + start);
}

bool process_gone(const std::string& host, int pid, const std::string& owner) {
  if (pid <= 0 || host != this_host()) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  const auto at = owner.rfind('@');  // owners named before start times were recorded have none
  return at != std::string::npos && owner.substr(at + 1) != start_ticks(pid);
}

bool owner_alive(const JobState& state, double stale_after_seconds) {
  return state.phase == JobPhase::Running && !process_gone(state.host, state.pid, state.owner) &&
         now_seconds() - state.heartbeat <= stale_after_seconds;
}

}  // namespace sweep
