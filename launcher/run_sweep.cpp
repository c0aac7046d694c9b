// The sweep driver: checks the sweep file, the grid, the data and the output directory before any
// training, writes or extends the plan, runs jobs on groups of ranks, and writes the report.
#include "launcher/run_sweep.h"

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/job_state.h"
#include "config/config_error.h"
#include "config/grid.h"
#include "config/job_settings.h"
#include "config/sweep_plan.h"
#include "launcher/data_check.h"
#include "launcher/group_runner.h"
#include "launcher/job_claim.h"
#include "launcher/memory_check.h"
#include "launcher/normalize_factors.h"
#include "launcher/output_check.h"
#include "launcher/probes.h"
#include "launcher/progress_display.h"
#include "launcher/resume_checks.h"
#include "launcher/stop_signals.h"
#include "report/files.h"
#include "sharding/data_error.h"
#include "worker/cpu_threads.h"
#include "worker/group_communicator.h"
#include "worker/job_files.h"
#include "worker/mpi_communicator.h"
#include "worker/run_job.h"

namespace sweep::launcher {
namespace {

namespace fs = std::filesystem;

// Where a sweep-wide setting was made: its line in the file, its --set, or the file itself.
std::string where_set(const SweepSpec& spec, const std::string& key) {
  auto it = spec.where.find(key);
  return it != spec.where.end() ? it->second : spec.file.filename().string();
}

void check_world(const SweepSpec& spec, int world_size) {
  int64_t g = spec.base["train.ranks_per_job"];
  if (world_size % g == 0) return;
  std::string fits;
  for (int d = 1; d <= world_size; ++d) {
    if (world_size % d == 0) fits += (fits.empty() ? "" : ", ") + std::to_string(d);
  }
  throw ConfigError(where_set(spec, "train.ranks_per_job") + ": train.ranks_per_job = " + std::to_string(g) +
                    " does not divide the " + std::to_string(world_size) +
                    " ranks started; with this many ranks use one of: " + fits);
}

// train.device = "cuda" where this process sees no GPU: refused before any job, not failed in each.
void check_device(const SweepSpec& spec) {
  if (spec.base["train.device"] != "cuda" || torch::cuda::is_available()) return;
  const std::string why = at::hasCUDA()
                              ? "no CUDA device is visible to this process (see nvidia-smi and CUDA_VISIBLE_DEVICES)"
                              : "this sweep binary is built against a CPU-only LibTorch (the README's \"Many "
                                "processes and GPUs\" shows the GPU build)";
  throw ConfigError(where_set(spec, "train.device") + ": train.device = \"cuda\": " + why +
                    "; use \"auto\" or \"cpu\" to train on the CPU");
}

// CPU threads per rank: the machine's cores shared by the ranks on it.
int cores_here() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// Jobs this process trains side by side: run.jobs_per_process, or for 0 one per core of its share
// on a CPU (one on a GPU), never more than the jobs still to run.
int wanted_side_by_side(const SweepSpec& spec, const MpiSession& mpi, bool gpu) {
  const int asked = to_run_settings(spec.base).jobs_per_process;
  if (spec.base["train.ranks_per_job"].get<int>() > 1) return 1;
  return asked > 0 ? asked : gpu ? 1 : std::max(1, cores_here() / mpi.local_size);
}

int jobs_side_by_side(const SweepSpec& spec, const std::vector<PlannedJob>& jobs, const fs::path& out,
                      const MpiSession& mpi, const torch::Device& device) {
  int pending = 0;
  for (const auto& job : jobs) pending += read_job_state(out / "jobs" / job.id).phase != JobPhase::Done;
  return std::max(1, std::min(wanted_side_by_side(spec, mpi, device.is_cuda()), pending));
}

// Each job's threads follow from the jobs side by side the whole plan would have, not from those
// left to run: OpenBLAS's products may round differently with another thread count, so a resumed or
// retried job computes with the threads it first had and repeats its results bit for bit.
// The threads run bfloat16 products in LibTorch's pool when every job of the plan has them.
void share_cores(const MpiSession& mpi, const std::vector<PlannedJob>& jobs, int jobs_here, int jobs_planned) {
  int threads = std::max(1, cores_here() / (mpi.local_size * std::max(jobs_here, jobs_planned)));
  const bool bfloat16 = std::all_of(jobs.begin(), jobs.end(), [](const PlannedJob& job) {
    return to_job_config(job).sae.matmul == sae::MatmulDtype::BFloat16;
  });
  const char* how = worker::use_cpu_threads(threads, bfloat16 ? worker::ProductPool::LibTorch : worker::ProductPool::Blas);
  if (mpi.world_rank == 0) spdlog::info("{} CPU thread(s) per job, {} job(s) side by side per process ({})", threads, jobs_here, how);
}

// Threads of this process that each work through the sweep as a group of one rank.
void run_side_by_side(const GroupRun& shared, int jobs_here, bool root, double progress_seconds) {
  std::vector<std::unique_ptr<ProgressDisplay>> displays;
  std::vector<std::exception_ptr> errors(jobs_here);
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs_here; ++t) {
    displays.push_back(std::make_unique<ProgressDisplay>(false, progress_seconds));  // no live bar for several jobs
    threads.emplace_back([&, t] {
      try {
        worker::LocalCommunicator alone;
        GroupRun run = shared;
        run.group = &alone;
        run.display = displays[t].get();
        run.reports_sweep = root && t == 0;
        run_group(run);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

// World rank 0, before any training: the plan (new, or the existing one extended), a copy of the
// sweep file, and room on disk for what the jobs still to run will write.
void prepare_output(const SweepOptions& options, const SweepSpec& spec, const std::vector<PlannedJob>& jobs,
                    const std::map<std::string, int64_t>& widths, const fs::path& out, int groups) {
  if (options.fresh) move_aside(out, to_run_settings(spec.base).stale_after_seconds);
  check_writable(out);
  auto plan_file = out / "plan.json";
  std::vector<PlannedJob> ordered = jobs;
  nlohmann::json old_plan;  // null for a new directory
  if (fs::exists(plan_file)) {
    try {
      old_plan = read_json(plan_file);
      ordered = extend_plan(old_plan, plan_file, spec, jobs);
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {  // not JSON, or not a plan
      const std::string what = e.what();
      throw ConfigError((what.rfind(plan_file.string(), 0) == 0 ? what : plan_file.string() + ": not a sweep plan (" + what + ")") +
                        "; restore it, or re-run with --fresh to start again (the old directory is kept under a new name)");
    }
    size_t added = ordered.size() - old_plan["jobs"].size();
    if (added > 0) spdlog::info("{}: adding {} new job(s) to the existing plan", plan_file.string(), added);
  }
  attach_normalize_factors(ordered, old_plan);
  auto plan = plan_json(spec, ordered);
  plan["data_fingerprints"] = fingerprint_data(ordered);
  if (!old_plan.is_null()) check_data_unchanged(old_plan, plan["data_fingerprints"], plan_file);  // before any write
  if (fs::exists(out / "jobs") && !fs::is_directory(out / "jobs")) {
    throw ConfigError((out / "jobs").string() + " is not a directory, but the jobs' directories belong there; move it "
                                                "away, or write to another --out");
  }
  write_file_atomic(out / "sweep.toml", spec.text);
  write_json_atomic(plan_file, plan);
  for (const auto& planned : plan["jobs"]) {
    auto dir = out / "jobs" / planned["id"].get<std::string>();
    if (fs::exists(dir) || fs::is_symlink(dir)) requeue_if_damaged(dir, planned);
  }

  std::vector<PlannedJob> to_run;
  std::vector<int64_t> d_in;
  for (const auto& job : ordered) {
    if (read_job_state(out / "jobs" / job.id).phase == JobPhase::Done) continue;
    to_run.push_back(job);
    d_in.push_back(widths.at(job.id));
  }
  if (!to_run.empty() && to_run.size() < ordered.size()) {
    spdlog::info("resuming: {} of {} jobs already done", ordered.size() - to_run.size(), ordered.size());
  }
  check_free_space(out, bytes_needed(to_run, d_in, groups) + report_bytes(ordered),
                   static_cast<double>(fs::space(out).available));
  prepare_probes(out, to_run);
}

// Every job done or failed (nothing pending, running elsewhere, or preempted).
bool sweep_finished(const fs::path& out, const std::vector<PlannedJob>& jobs) {
  for (const auto& job : jobs) {
    auto phase = read_job_state(out / "jobs" / job.id).phase;
    if (phase != JobPhase::Done && phase != JobPhase::Failed) return false;
  }
  return true;
}

int write_sweep_report(const fs::path& out) {
  nlohmann::json report;
  try {
    report = read_and_build_report(out);  // from the files the group leaders wrote, as `sweep report` does
    write_report(out, report);
  } catch (const std::exception& e) {
    spdlog::error("the report could not be written: {}. Every job's results are kept in {}/jobs; free space if the "
                  "disk is full, then run `sweep report {}`",
                  e.what(), out.string(), out.string());
    return kExitOutputFailed;
  }
  log_damaged_jobs(report);
  spdlog::info("report: {}", (out / "report.html").string());
  for (const auto& id : report["absorption_never_fired"]) {
    spdlog::warn("the absorption penalty NEVER FIRED in job {}: see report.md", id.get<std::string>());
  }
  return report["counts"]["done"] == report["counts"]["total"] ? kExitOk : kExitJobFailed;
}

// World rank 0, after every group stopped: the report when the sweep is finished.
int conclude(const fs::path& out, const std::vector<PlannedJob>& jobs, bool stopped) {
  if (sweep_finished(out, jobs)) return write_sweep_report(out);
  if (stopped) {
    spdlog::warn("sweep stopped before its end; re-run the same command to continue (`sweep status {}` shows where "
                 "each job is)",
                 out.string());
    return kExitPreempted;
  }
  std::vector<std::string> elsewhere, stranded;
  const auto me = this_process().owner;
  double wait = 0;  // until the youngest stranded claim goes stale (another host's process cannot be checked)
  for (const auto& job : jobs) {
    auto state = read_job_state(out / "jobs" / job.id);
    if (state.phase == JobPhase::Done || state.phase == JobPhase::Failed) continue;
    const double stale_after = to_run_settings(job.resolved).stale_after_seconds;
    bool live = state.owner != me && owner_alive(state, stale_after);
    (live ? elsewhere : stranded).push_back(job.id + " (" + phase_name(state.phase) + ")");
    if (!live && !state.owner.empty() && state.owner != me && !process_gone(state.host, state.pid, state.owner))
      wait = std::max(wait, stale_after - (now_seconds() - state.heartbeat));
  }
  if (stranded.empty()) {
    spdlog::info("this process has no job left; {} job(s) still running in other processes (such as {}) will write "
                 "the report",
                 elsewhere.size(), elsewhere.front());
    return kExitOk;
  }
  spdlog::error("the sweep did not finish: {} job(s), such as {}, are neither done nor failed and no process is running "
                "them (the errors above say why); the report is not written. Re-run the same command to run them{}",
                stranded.size(), stranded.front(),
                wait > 0 ? fmt::format(" (a claim of a process that cannot be checked from here is taken over once its "
                                       "last heartbeat is run.stale_after_seconds old: in {:.0f} s)",
                                       wait)
                         : std::string());
  return kExitJobFailed;
}

}  // namespace

int run_sweep(const SweepOptions& options, const MpiSession& mpi) {
  const bool root = mpi.world_rank == 0;
  SweepSpec spec;
  std::vector<PlannedJob> jobs;
  std::map<std::string, int64_t> widths;
  try {  // every rank validates the same input and so reaches the same verdict
    spec = load_sweep(options.file, options.overrides);
    jobs = expand_grid(spec);
    if (root) {
      for (const auto& note : ignored_settings(spec)) spdlog::info("{}", note);
    }
    check_world(spec, mpi.world_size);
    check_device(spec);
    widths = check_data(spec, jobs);
    // Jobs side by side in each process hold their memory at once.
    const int here = mpi.local_size * std::min<int>(wanted_side_by_side(spec, mpi, spec.base["train.device"] == "cuda"),
                                                    static_cast<int>(jobs.size()));
    // The least any rank sees available, so that every rank reaches the same verdict.
    double available = available_memory_bytes();
    worker::check_mpi(MPI_Allreduce(MPI_IN_PLACE, &available, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    for (const auto& job : jobs) check_memory(job, widths.at(job.id), here, available, spec.file.filename().string());
  } catch (const ConfigError& e) {
    if (root) spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  const int group_size = spec.base["train.ranks_per_job"].get<int>();
  const auto out = output_directory(options.out, spec);
  int code = kExitOk;
  if (root) {
    try {
      prepare_output(options, spec, jobs, widths, out, mpi.world_size / group_size);
    } catch (const std::exception& e) {  // ConfigError, or a file system error naming its path
      spdlog::error("{}", e.what());
      code = kExitInvalidInput;
    }
  }
  worker::check_mpi(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  if (code != kExitOk) return code;
  jobs = jobs_from_plan(read_json(out / "plan.json"));
  int gpu_index = torch::cuda::is_available() ? mpi.local_rank % static_cast<int>(torch::cuda::device_count()) : 0;
  auto device = worker::pick_device(spec.base["train.device"], gpu_index);
  const int jobs_here = jobs_side_by_side(spec, jobs, out, mpi, device);
  share_cores(mpi, jobs, jobs_here,
              std::min<int>(wanted_side_by_side(spec, mpi, device.is_cuda()), static_cast<int>(jobs.size())));

  MPI_Comm group_comm;
  worker::check_mpi(MPI_Comm_split(MPI_COMM_WORLD, mpi.world_rank / group_size, mpi.world_rank, &group_comm), "MPI_Comm_split");
  {
    auto group = worker::make_group_communicator(group_comm, device);
    MPI_Comm_free(&group_comm);
    if (root) {
      spdlog::info("sweep {}: {} jobs on {} group(s) of {} rank(s) ({}, collectives over {}), output in {}", spec.name,
                   jobs.size(), mpi.world_size / group_size, group_size, device.str(), worker::group_backend(device),
                   out.string());
    }
    JobCounter counter(MPI_COMM_WORLD);
    const double progress_seconds = to_run_settings(spec.base).progress_seconds;
    ProgressDisplay display(progress_bar_fits(mpi.world_size), progress_seconds);
    GroupRun run;
    run.out = out;
    run.jobs = &jobs;
    run.group = group.get();
    run.counter = &counter;
    run.me = this_process();
    run.world_rank = mpi.world_rank;
    run.reports_sweep = root;
    run.gpu_index = gpu_index;
    run.display = &display;
    run.started = now_seconds();
    if (jobs_here == 1) {
      run_group(run);
    } else {
      run_side_by_side(run, jobs_here, root, progress_seconds);
    }
    worker::check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }
  int stopped_here = stop_requested() ? 1 : 0, stopped = 0;
  worker::check_mpi(MPI_Allreduce(&stopped_here, &stopped, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  if (root) {
    try {
      code = conclude(out, jobs, stopped != 0);
    } catch (const std::exception& e) {  // a state file that became unreadable during the sweep
      spdlog::error("{}", e.what());
      code = kExitOutputFailed;
    }
  }
  worker::check_mpi(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return code;
}

}  // namespace sweep::launcher
