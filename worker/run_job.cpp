// The training loop of one job, written to be read top to bottom: data, model, steps with
// periodic logging, held-out evaluation, SAELens export and result.json.
#include "worker/run_job.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "worker/evaluate.h"
#include "worker/group_failure.h"
#include "worker/job_files.h"
#include "worker/trainer.h"

namespace sweep::worker {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Running totals of the penalty's activity over all steps.
struct PenaltyActivity {
  int64_t steps = 0, active_steps = 0;
  double pairs = 0, loss = 0;

  void add(const StepStats& s) {
    ++steps;
    active_steps += s.flagged_pairs > 0;
    pairs += static_cast<double>(s.flagged_pairs);
    loss += s.absorb_loss;
  }
  nlohmann::json summary() const {
    double n = std::max<int64_t>(1, steps);
    return {{"absorb_pairs_mean", pairs / n},
            {"absorb_active_fraction", static_cast<double>(active_steps) / n},
            {"absorb_loss_mean", loss / n}};
  }
};

nlohmann::json step_line(int64_t step, const StepStats& s) {
  return {{"step", step},        {"loss", s.loss},          {"recon", s.recon},
          {"sparse", s.sparse},  {"aux", s.aux},            {"absorb", s.absorb_loss},
          {"l0", s.l0},          {"flagged_pairs", s.flagged_pairs}, {"lr", s.lr}};
}

nlohmann::json base_result(const JobConfig& cfg) {
  return {{"id", cfg.id}, {"params", cfg.params}, {"config", cfg.resolved}};
}

nlohmann::json failed_result(const JobConfig& cfg, const std::string& error) {
  auto result = base_result(cfg);
  result["status"] = "failed";
  result["error"] = error;
  return result;
}

nlohmann::json train_and_evaluate(const JobConfig& job, Communicator& comm, const std::filesystem::path& job_dir) {
  const bool leader = comm.is_leader();
  auto device = pick_device(job.train.device, job.train.gpu_index);
  auto data = agree_on(comm, [&] { return sharding::open_dataset(job.data); });
  JobConfig cfg = job;
  cfg.sae.d_in = data->d_in();  // the data decides the width (activation files carry their own)
  Trainer trainer(cfg, comm, device);
  const auto& train = cfg.train;
  trainer.initialize_decoder_bias(
      agree_on(comm, [&] { return data->train_shard(0, train.batch_size, comm.rank(), comm.size()); }).activations);

  std::unique_ptr<MetricsLog> log;
  if (leader) log = std::make_unique<MetricsLog>(job_dir / "metrics.jsonl");
  PenaltyActivity activity;
  StepStats last;
  auto start = Clock::now();
  while (trainer.state().step < train.steps) {
    int64_t step = trainer.state().step;
    auto shard = agree_on(comm, [&] { return data->train_shard(step, train.batch_size, comm.rank(), comm.size()); });
    auto stats = trainer.step(shard.activations);
    activity.add(stats);
    bool log_now = (step + 1) % train.log_every == 0 || step + 1 == train.steps;
    if (!log_now) continue;
    last = reduce_step_stats(stats, comm);
    if (!leader) continue;
    log->append(step_line(step + 1, last));
    spdlog::info("[job {}] step {}/{} loss {:.4g} recon {:.4g} l0 {:.1f} flagged pairs {} ({:.1f} ms/step)",
                 cfg.id, step + 1, train.steps, last.loss, last.recon, last.l0, last.flagged_pairs,
                 1000.0 * seconds_since(start) / static_cast<double>(step + 1));
  }
  double train_seconds = seconds_since(start);

  auto eval = evaluate(trainer.model(), *data, comm, train.eval_batch_size, device);
  nlohmann::json metrics(eval.metrics);
  metrics.update(activity.summary());
  if (leader) write_saelens(job_dir / "sae", sae::export_saelens(trainer.model(), eval.firing_frequency, cfg.origin));

  double tokens = static_cast<double>(train.steps * train.batch_size);
  nlohmann::json result = base_result(cfg);
  result["status"] = "done";
  result["metrics"] = metrics;
  result["train"] = {{"steps", train.steps},
                     {"tokens", tokens},
                     {"seconds", train_seconds},
                     {"tokens_per_second", tokens / std::max(train_seconds, 1e-9)},
                     {"step_ms", 1000.0 * train_seconds / static_cast<double>(std::max<int64_t>(1, train.steps))},
                     {"final_loss", last.loss},
                     {"ranks", comm.size()},
                     {"device", device.str()}};
  return result;
}

}  // namespace

torch::Device pick_device(const std::string& setting, int gpu_index) {
  if (setting == "cuda" || (setting == "auto" && torch::cuda::is_available())) {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu_index));
  }
  return torch::Device(torch::kCPU);
}

JobOutcome run_job(const JobConfig& cfg, Communicator& comm, const std::filesystem::path& job_dir) {
  JobOutcome outcome;
  if (comm.is_leader()) std::filesystem::create_directories(job_dir);
  try {
    outcome.result = train_and_evaluate(cfg, comm, job_dir);
    outcome.ok = true;
  } catch (const c10::Error& e) {
    outcome.result = failed_result(cfg, e.what_without_backtrace());
  } catch (const std::exception& e) {
    outcome.result = failed_result(cfg, e.what());
  }
  if (!outcome.ok && comm.is_leader()) spdlog::error("[job {}] failed: {}", cfg.id, outcome.result["error"].get<std::string>());
  if (comm.is_leader()) write_json_atomic(job_dir / "result.json", outcome.result);
  return outcome;
}

}  // namespace sweep::worker
