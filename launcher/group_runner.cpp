// Claiming, running and recording jobs. A job needs running unless it is done or has failed
// run.max_attempts times; its state.json is written by the leader of the group that holds it.
#include "launcher/group_runner.h"

#include <optional>

#include <spdlog/spdlog.h>

#include "common/job_state.h"
#include "config/job_settings.h"
#include "launcher/probes.h"
#include "launcher/stop_signals.h"
#include "worker/job_files.h"
#include "worker/run_job.h"

namespace sweep::launcher {
namespace {

std::filesystem::path job_dir(const GroupRun& run, size_t index) { return run.out / "jobs" / (*run.jobs)[index].id; }

// Done jobs, and jobs that failed run.max_attempts times, are left alone. A job whose result
// says done but whose state does not (its process died between the two writes) is done.
bool needs_running(const std::filesystem::path& dir, const PlannedJob& job, JobState& state) {
  if (state.phase == JobPhase::Done) return false;
  auto result_file = dir / "result.json";
  if (std::filesystem::exists(result_file) && read_json(result_file).value("status", "") == "done") {
    state.phase = JobPhase::Done;
    state.step = state.steps;
    write_job_state(dir, state);
    return false;
  }
  return !(state.phase == JobPhase::Failed && state.failures >= to_run_settings(job.resolved).max_attempts);
}

// Leader: claims the next job that needs running and marks it running. nullopt: none left.
std::optional<size_t> claim_next_job(const GroupRun& run) {
  while (!stop_requested()) {
    int64_t index = run.counter->next();
    if (index >= static_cast<int64_t>(run.jobs->size())) return std::nullopt;
    const auto& job = (*run.jobs)[index];
    auto dir = job_dir(run, index);
    if (!try_claim(dir, run.me, to_run_settings(job.resolved).stale_after_seconds)) continue;
    try {
      auto state = read_job_state(dir);
      if (needs_running(dir, job, state)) {
        state.phase = JobPhase::Running;
        state.attempts += 1;
        state.owner = run.me.owner;
        state.host = run.me.host;
        state.pid = run.me.pid;
        state.world_rank = run.world_rank;
        state.heartbeat = now_seconds();
        state.steps = job.resolved["train.steps"];
        write_job_state(dir, state);
        spdlog::info("job {}/{} {} {} (attempt {})", index + 1, run.jobs->size(), job.id, job.params.dump(),
                     state.attempts);
        return index;
      }
    } catch (const std::exception& e) {
      spdlog::error("[job {}] cannot be started: {}", job.id, e.what());
    }
    release_claim(dir, run.me);
  }
  return std::nullopt;
}

// Leader: the job's state after its attempt, then the claim is given back.
void record_outcome(const GroupRun& run, size_t index, const worker::JobOutcome& outcome) {
  auto dir = job_dir(run, index);
  try {
    auto state = read_job_state(dir);
    state.heartbeat = now_seconds();
    switch (outcome.status) {
      case worker::JobStatus::Done:
        state.phase = JobPhase::Done;
        state.step = state.steps;
        state.reason.clear();
        break;
      case worker::JobStatus::Failed:
        state.phase = JobPhase::Failed;
        state.failures += 1;
        state.reason = outcome.result.value("error", "");
        break;
      case worker::JobStatus::Preempted: {
        state.phase = JobPhase::Preempted;
        state.step = outcome.result.value("step", state.step);
        const auto& saved = outcome.result["checkpoint_step"];
        const std::string by = stop_signal() != 0 ? "by signal " + std::to_string(stop_signal()) : "(a rank of its group was signalled)";
        spdlog::warn("[job {}] stopped {} at step {}: {}, marked preempted", (*run.jobs)[index].id, by, state.step,
                     saved.is_null() ? "no checkpoint yet, it starts again from step 0"
                                     : "its checkpoint is at step " + saved.dump());
        break;
      }
    }
    write_job_state(dir, state);
  } catch (const std::exception& e) {
    spdlog::error("[job {}] cannot record its state: {}", (*run.jobs)[index].id, e.what());
  }
  release_claim(dir, run.me);
}

// World rank 0: jobs done out of all (from their state files) and a rough ETA for the sweep.
void log_sweep_progress(const GroupRun& run) {
  size_t done = 0, running = 0;
  for (const auto& job : *run.jobs) {
    auto phase = read_job_state(run.out / "jobs" / job.id).phase;
    done += phase == JobPhase::Done || phase == JobPhase::Failed;
    running += phase == JobPhase::Running;
  }
  double elapsed = now_seconds() - run.started;
  auto eta = done > 0 ? format_duration(elapsed * static_cast<double>(run.jobs->size() - done) / static_cast<double>(done))
                      : std::string("?");
  run.display->end_line();
  spdlog::info("sweep: {}/{} jobs finished, {} running, {} elapsed, ETA {}", done, run.jobs->size(), running,
               format_duration(elapsed), eta);
}

// Leader: after every step, the progress display, a fresh heartbeat in state.json every
// run.heartbeat_seconds, and (world rank 0) the sweep's progress every few progress intervals.
worker::JobControl job_control(const GroupRun& run, size_t index) {
  worker::JobControl control;
  control.stop_requested = stop_requested;
  if (!run.group->is_leader()) return control;
  const auto& job = (*run.jobs)[index];
  auto dir = job_dir(run, index);
  const auto settings = to_run_settings(job.resolved);
  double heartbeat_every = settings.heartbeat_seconds;
  double sweep_every = 5.0 * settings.progress_seconds;
  auto label = job.id + " " + params_text(job.params);
  auto last_heartbeat = std::make_shared<double>(now_seconds());
  auto last_sweep_line = std::make_shared<double>(now_seconds());
  control.on_step = [run, dir, label, heartbeat_every, sweep_every, last_heartbeat,
                     last_sweep_line](const JobProgress& progress) {
    run.display->update(label, progress);
    double now = now_seconds();
    if (now - *last_heartbeat >= heartbeat_every) {
      auto state = read_job_state(dir);
      state.step = progress.step;
      state.progress = progress;
      state.heartbeat = *last_heartbeat = now;
      write_job_state(dir, state);
    }
    if (run.reports_sweep && now - *last_sweep_line >= sweep_every) {
      *last_sweep_line = now;
      log_sweep_progress(run);
    }
  };
  return control;
}

}  // namespace

void run_group(const GroupRun& run) {
  const auto none = static_cast<int64_t>(run.jobs->size());
  while (true) {
    auto index = torch::full({1}, none, torch::kLong);
    if (run.group->is_leader()) {
      if (auto next = claim_next_job(run)) index[0] = static_cast<int64_t>(*next);
    }
    run.group->broadcast(index, 0);
    int64_t i = index[0].item<int64_t>();
    if (i >= none) return;
    auto cfg = to_job_config((*run.jobs)[i]);
    cfg.train.gpu_index = run.gpu_index;
    cfg.probe_file = probe_file_for(run.out, cfg.resolved);
    auto outcome = worker::run_job(cfg, *run.group, job_dir(run, i), job_control(run, i));
    if (run.group->is_leader()) {
      run.display->end_line();
      record_outcome(run, i, outcome);
      if (run.reports_sweep) log_sweep_progress(run);
    }
    if (outcome.status == worker::JobStatus::Preempted) return;  // a stop ends the group, whichever rank it reached
  }
}

}  // namespace sweep::launcher
