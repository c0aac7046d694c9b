// The sweep driver: checks the sweep file, the grid and the data before any training, writes
// the plan, runs jobs on groups of ranks with dynamic scheduling, and aggregates the report.
#include "launcher/run_sweep.h"

#include <algorithm>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "launcher/config_error.h"
#include "launcher/grid.h"
#include "launcher/job_counter.h"
#include "launcher/job_settings.h"
#include "launcher/report_files.h"
#include "sharding/data_error.h"
#include "worker/cpu_threads.h"
#include "worker/job_files.h"
#include "worker/mpi_communicator.h"
#include "worker/run_job.h"

namespace sweep::launcher {
namespace {

// Opens every distinct data source once, so a bad shard stops the sweep before any training.
void check_data(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  std::set<std::string> checked;
  for (const auto& job : jobs) {
    const auto& c = job.resolved;
    if (c["data.source"] != "files") continue;
    auto key = c["data.paths"].dump() + c["data.tensor"].dump() + c["data.eval_tokens"].dump();
    if (!checked.insert(key).second) continue;
    try {
      sharding::open_dataset(to_data_config(c));
    } catch (const sharding::DataError& e) {
      auto where = spec.where.count("data.paths") ? spec.where.at("data.paths") : spec.file.filename().string();
      throw ConfigError(where + ": data.paths = " + c["data.paths"].dump() + ": " + e.what());
    }
  }
}

void check_world(const SweepSpec& spec, int world_size) {
  int64_t g = spec.base["train.ranks_per_job"];
  if (world_size % g == 0) return;
  std::string fits;
  for (int d = 1; d <= world_size; ++d) {
    if (world_size % d == 0) fits += (fits.empty() ? "" : ", ") + std::to_string(d);
  }
  auto it = spec.where.find("train.ranks_per_job");
  throw ConfigError((it != spec.where.end() ? it->second : spec.file.filename().string()) + ": train.ranks_per_job = " +
                    std::to_string(g) + " does not divide the " + std::to_string(world_size) +
                    " ranks started; with this many ranks use one of: " + fits);
}

nlohmann::json plan_json(const SweepSpec& spec, const std::vector<PlannedJob>& jobs) {
  nlohmann::json plan = {{"sweep", spec.name}, {"jobs", nlohmann::json::array()}};
  for (size_t i = 0; i < jobs.size(); ++i) {
    plan["jobs"].push_back({{"index", i}, {"id", jobs[i].id}, {"params", jobs[i].params},
                            {"baseline", jobs[i].baseline}, {"config", jobs[i].resolved}});
  }
  return plan;
}

// CPU threads per rank: the machine's cores shared by the ranks on it.
void share_cores(const MpiSession& mpi) {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads = std::max(1, cores / mpi.local_size);
  const char* how = worker::use_cpu_threads(threads);
  if (mpi.world_rank == 0) spdlog::info("{} CPU thread(s) per rank ({})", threads, how);
}

int write_sweep_report(const std::filesystem::path& out) {
  auto report = rebuild_report(out);  // from the files the group leaders wrote, as `sweep report` does
  spdlog::info("report: {}", (out / "report.html").string());
  for (const auto& id : report["penalty_never_fired"]) {
    spdlog::warn("the absorption penalty NEVER FIRED in job {}: see report.md", id.get<std::string>());
  }
  return report["counts"]["done"] == report["counts"]["total"] ? kExitOk : kExitJobFailed;
}

}  // namespace

int run_sweep(const SweepOptions& options, const MpiSession& mpi) {
  const bool root = mpi.world_rank == 0;
  SweepSpec spec;
  std::vector<PlannedJob> jobs;
  try {  // every rank validates the same input and so reaches the same verdict
    spec = load_sweep(options.file, options.overrides);
    jobs = expand_grid(spec);
    check_world(spec, mpi.world_size);
    check_data(spec, jobs);  // on every rank too: all must reach the same verdict
  } catch (const ConfigError& e) {
    if (root) spdlog::error("{}", e.what());
    return kExitInvalidInput;
  }
  auto out = options.out.value_or(std::filesystem::path("runs") / spec.name);
  if (root) {
    std::filesystem::create_directories(out / "jobs");
    worker::write_file_atomic(out / "sweep.toml", spec.text);
    worker::write_json_atomic(out / "plan.json", plan_json(spec, jobs));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  share_cores(mpi);

  const int group_size = spec.base["train.ranks_per_job"].get<int>();
  MPI_Comm group_comm;
  MPI_Comm_split(MPI_COMM_WORLD, mpi.world_rank / group_size, mpi.world_rank, &group_comm);
  {
    worker::MpiCommunicator group(group_comm);
    MPI_Comm_free(&group_comm);
    if (root) {
      spdlog::info("sweep {}: {} jobs on {} group(s) of {} rank(s), output in {}", spec.name, jobs.size(),
                   mpi.world_size / group_size, group_size, out.string());
    }
    int gpu_index = torch::cuda::is_available() ? mpi.local_rank % static_cast<int>(torch::cuda::device_count()) : 0;
    JobCounter counter(MPI_COMM_WORLD);
    while (true) {
      auto index = torch::zeros({1}, torch::kLong);
      if (group.is_leader()) index[0] = counter.next();
      group.broadcast(index, 0);
      int64_t i = index[0].item<int64_t>();
      if (i >= static_cast<int64_t>(jobs.size())) break;
      if (group.is_leader()) spdlog::info("job {}/{} {} {}", i + 1, jobs.size(), jobs[i].id, jobs[i].params.dump());
      auto cfg = to_job_config(jobs[i]);
      cfg.train.gpu_index = gpu_index;
      worker::run_job(cfg, group, out / "jobs" / jobs[i].id);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  int code = root ? write_sweep_report(out) : 0;
  MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return code;
}

}  // namespace sweep::launcher
