// The training loop of one job, written to be read top to bottom: data, model, resume from the
// newest checkpoint, steps with logging and checkpoints, evaluation, SAELens export, result.json.
#include "worker/run_job.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "common/export_checksums.h"
#include "common/version.h"
#include "sae/fold_scale.h"
#include "sae/penalties/absorption.h"
#include "sharding/normalization.h"
#include "worker/checkpoint.h"
#include "worker/evaluate.h"
#include "worker/group_failure.h"
#include "worker/job_files.h"
#include "worker/probe_file.h"
#include "worker/absorption_activity.h"
#include "worker/step_agreement.h"
#include "worker/trainer.h"

namespace sweep::worker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A logging step's line of metrics.jsonl: the loss terms, then every penalty's activity by name.
nlohmann::json step_line(int64_t step, const StepStats& s, const StepTerms& t) {
  nlohmann::json line = {{"step", step},       {"loss", s.loss}, {"recon", t.recon},
                         {"sparse", t.sparse}, {"aux", t.aux},   {"l0", t.l0}, {"lr", s.lr}};
  for (const auto& [name, value] : t.penalties) line[name] = value;
  return line;
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

bool checkpoint_due(const TrainConfig& train, int64_t step, double seconds_since_checkpoint) {
  if (train.checkpoint_every > 0) return step % train.checkpoint_every == 0;
  return seconds_since_checkpoint >= train.checkpoint_seconds;
}

// A loss that stays finite can still diverge: grown by orders of magnitude, it fails the job.
void check_not_diverged(const StepStats& stats, double first_loss, const TrainConfig& train, int64_t step) {
  if (!(first_loss > 0.0) || stats.loss <= train.divergence_factor * first_loss) return;
  throw GroupFailure(fmt::format("training diverged: the loss is {:.3g} at step {}, {:.3g} times its first step's "
                                 "{:.3g} (train.divergence_factor {:g}); lower train.lr (now {:g})",
                                 stats.loss, step + 1, stats.loss / first_loss, first_loss, train.divergence_factor,
                                 train.lr));
}

// An SAE whose every latent is dead on the held-out rows has collapsed; its metrics would mislead.
void check_not_collapsed(const Evaluation& eval, const TrainConfig& train) {
  auto dead = eval.metrics.find("dead_fraction");
  if (dead == eval.metrics.end() || dead->second < 1.0) return;
  throw GroupFailure(fmt::format("training collapsed: every latent is dead on the held-out rows (dead_fraction 1); "
                                 "lower train.lr (now {:g}), the sparsity penalty or, for jumprelu, sae.init_threshold",
                                 train.lr));
}

// The leader restores the newest valid checkpoint and sends the state to the rest of the group.
// Returns the loop's progress saved with it, or nullopt when the job starts fresh.
std::optional<nlohmann::json> resume_from_checkpoint(TrainingState& state, Communicator& comm, const fs::path& job_dir) {
  auto found = agree_on(comm, [&] {
    return comm.is_leader() ? restore_newest_checkpoint(job_dir, state) : std::optional<Checkpoint>();
  });
  auto header = torch::tensor({static_cast<int64_t>(found.has_value()), state.step, state.code_size}, torch::kLong);
  comm.broadcast(header, 0);
  if (header[0].item<int64_t>() == 0) return std::nullopt;
  if (comm.size() > 1) {
    torch::NoGradGuard no_grad;
    for (auto& named : training_state_tensors(state)) comm.broadcast(named.second, 0);
    for (auto& penalty : state.penalties) {  // the leader's state: its shape first (the pairs' number), then the tensors
      if (!penalty) continue;
      auto shape = penalty->shape_header();
      if (shape.defined()) {
        comm.broadcast(shape, 0);
        if (!comm.is_leader()) penalty->reshape(shape, header[1].item<int64_t>());
      }
      for (auto& named : penalty->tensors()) comm.broadcast(named.second, 0);
    }
    auto steps = adam_steps(state);
    comm.broadcast(steps, 0);
    set_adam_steps(state, steps);
    state.step = header[1].item<int64_t>();
    state.code_size = header[2].item<int64_t>();
  }
  return found ? found->progress : nlohmann::json::object();
}

// Where the matched and highest-cosine latent pairs lie against the job's thresholds (the report's
// coverage plot): columns, one entry per pair.
nlohmann::json coverage_json(const std::vector<sae::CoveragePair>& pairs, const sae::AbsorptionConfig& absorption) {
  nlohmann::json out = {{"tau", absorption.dot_threshold},
                        {"rho", absorption.ratio_threshold},
                        {"activation_threshold", absorption.activation_threshold},
                        {"ratio_kind", absorption.ratio == sae::RatioKind::Lift ? "lift" : "conditional"}};
  for (const char* column : {"i", "j", "cosine", "ratio", "matched", "active", "in_region"})
    out[column] = nlohmann::json::array();
  for (const auto& p : pairs) {
    out["i"].push_back(p.i), out["j"].push_back(p.j), out["cosine"].push_back(p.cosine);
    out["ratio"].push_back(p.ratio), out["matched"].push_back(p.matched), out["active"].push_back(p.active);
    out["in_region"].push_back(p.in_region);
  }
  return out;
}

// The probes of the probe-based absorption metric, when the job's data has labels: the sweep's
// probe file, which must name the data's concepts.
std::optional<ProbeScoring> load_probes(const JobConfig& cfg, const sharding::Dataset& data) {
  if (cfg.probe_file.empty()) return std::nullopt;
  auto file = read_probe_file(cfg.probe_file);
  if (file.names != data.concept_names() || file.probes.weight.size(1) != data.d_in()) {
    throw std::runtime_error(cfg.probe_file.string() + ": these probes were trained for other concepts or another d_in "
                                                       "than the job's data has; remove the file and re-run the sweep");
  }
  return ProbeScoring{file.probes, cfg.probe};
}

// The probe-based absorption metric per concept (result.json's "probe_absorption"), as columns.
nlohmann::json concepts_json(const std::vector<sae::ConceptAbsorption>& concepts, const sae::ProbeAbsorptionConfig& cfg) {
  nlohmann::json out = {{"min_rows", cfg.min_rows}, {"min_f1", cfg.min_f1}};
  for (const char* column : {"name", "positives", "probe_f1", "main_latents", "sparse_f1", "scored",
                             "absorption_fraction", "full_absorption", "counted"})
    out[column] = nlohmann::json::array();
  for (const auto& c : concepts) {
    out["name"].push_back(c.name), out["positives"].push_back(c.positives), out["probe_f1"].push_back(c.probe_f1);
    out["main_latents"].push_back(c.main_latents), out["sparse_f1"].push_back(c.sparse_f1);
    out["scored"].push_back(c.scored), out["counted"].push_back(c.counted);
    // NaN (no scored row) is written as null.
    out["absorption_fraction"].push_back(std::isnan(c.absorption_fraction) ? nlohmann::json() : nlohmann::json(c.absorption_fraction));
    out["full_absorption"].push_back(std::isnan(c.full_absorption) ? nlohmann::json() : nlohmann::json(c.full_absorption));
  }
  return out;
}

JobOutcome train_and_evaluate(const JobConfig& job, Communicator& comm, const fs::path& job_dir,
                              const JobControl& control) {
  const bool leader = comm.is_leader();
  auto device = pick_device(job.train.device, job.train.gpu_index);
  const auto raw = agree_on(comm, [&] { return sharding::open_dataset(job.data); });
  const auto probes = agree_on(comm, [&] { return load_probes(job, *raw); });
  // Training reads the rows scaled by data.normalize's factor; evaluation and export read the raw
  // rows with the factor folded into the weights.
  const double scale = job.data.normalize_factor;
  const auto scaled = scale == 1.0 ? nullptr : sharding::scaled_view(*raw, scale);
  const sharding::Dataset* data = scaled ? scaled.get() : raw.get();
  JobConfig cfg = job;
  cfg.sae.d_in = data->d_in();  // the data decides the width (activation files carry their own)
  if (const auto origin = raw->cache_origin()) {  // a SAELens cache knows its hook and context size
    cfg.origin.hook_name = origin->hook_name;
    cfg.origin.context_size = origin->context_size;
  }
  Trainer trainer(cfg, comm, device);
  const auto& train = cfg.train;
  auto resumed = resume_from_checkpoint(trainer.state(), comm, job_dir);
  if (!resumed) {
    trainer.start_fresh(
        agree_on(comm, [&] { return data->train_shard(0, train.batch_size, comm.rank(), comm.size()); }).activations);
  }
  const nlohmann::json saved = resumed.value_or(nlohmann::json::object());
  const int64_t first_step = trainer.state().step;
  if (resumed && leader) spdlog::info("[job {}] resuming from its checkpoint at step {}", cfg.id, first_step);

  std::unique_ptr<MetricsLog> log;
  if (leader) log = std::make_unique<MetricsLog>(job_dir / "metrics.jsonl", saved.value("metrics_bytes", uint64_t{0}));
  AbsorptionActivity activity = saved.contains("activity") ? AbsorptionActivity::from_totals(saved["activity"]) : AbsorptionActivity{};
  const double seconds_before = saved.value("train_seconds", 0.0);
  int64_t computed_again = saved.value("steps_computed_again", int64_t{0});  // a cut code or a candidate search
  auto start = Clock::now(), last_checkpoint = start;
  StepStats last;  // of the latest logging step
  last.loss = saved.value("last_loss", 0.0);
  double first_loss = saved.contains("first_loss") && saved["first_loss"].is_number()  // NaN: not yet stepped
                          ? saved["first_loss"].get<double>()
                          : std::numeric_limits<double>::quiet_NaN();
  auto progress = [&] {
    return nlohmann::json{{"activity", activity.totals()},
                          {"first_loss", first_loss},
                          {"last_loss", last.loss},
                          {"train_seconds", seconds_before + seconds_since(start)},
                          {"steps_computed_again", computed_again},
                          {"metrics_bytes", log ? log->bytes() : 0}};
  };

  int64_t checkpointed = first_step;
  std::optional<std::string> leader_error;  // the leader's file writes; shared at the next boundary
  auto local_failure = [&] { return leader_error ? leader_error : trainer.failure(); };  // this rank's, if any
  StepTerms last_terms;
  auto checkpoint_now = [&](int64_t step) {
    agree_on(comm, [&] { return leader ? save_checkpoint(job_dir, trainer.state(), progress()).step : step; });
    checkpointed = step;
    last_checkpoint = Clock::now();
  };
  auto preempted = [&](int64_t step) -> JobOutcome {  // checkpointed first, unless nothing is new
    if (step > checkpointed) checkpoint_now(step);
    const bool has_checkpoint = resumed.has_value() || checkpointed > 0;
    return {JobStatus::Preempted, {{"step", step}, {"checkpoint_step", has_checkpoint ? nlohmann::json(checkpointed) : nlohmann::json()}}};
  };
  while (trainer.state().step < train.steps) {
    int64_t step = trainer.state().step;
    bool due = leader && step > checkpointed && checkpoint_due(train, step, seconds_since(last_checkpoint));
    auto decision = agree_at_step_boundary(comm, control.stop_requested(), due, local_failure());
    if (decision.stop) return preempted(step);
    if (decision.checkpoint && step > checkpointed) checkpoint_now(step);

    auto shard = agree_on(comm, [&] { return data->train_shard(step, train.batch_size, comm.rank(), comm.size()); });
    auto stats = trainer.step(shard.activations);
    if (std::isnan(first_loss)) first_loss = stats.loss;
    check_not_diverged(stats, first_loss, train, step);  // the group's loss: every rank decides alike
    activity.add(stats);
    computed_again += stats.attempts - 1;
    bool log_now = (step + 1) % train.log_every == 0 || step + 1 == train.steps;
    if (log_now) {
      last = stats;
      last_terms = read_step_terms(stats);
    }
    if (!leader) continue;
    try {
      if (log_now) log->append(step_line(step + 1, last, last_terms));
      double rate = static_cast<double>(step + 1 - first_step) / std::max(seconds_since(start), 1e-9);
      control.on_step({step + 1, train.steps, rate * static_cast<double>(train.batch_size),
                       static_cast<double>(train.steps - step - 1) / rate, last.loss, last_terms.l0,
                       static_cast<int64_t>(last_terms.penalty("flagged_pairs"))});
    } catch (const std::exception& e) {
      leader_error = error_text(e);
    }
  }
  raise_if_any_failed(comm, local_failure());
  double train_seconds = seconds_before + seconds_since(start);

  const auto eval_started = Clock::now();
  const auto folded = scale == 1.0 ? nullptr : sae::fold_activation_scale(trainer.model(), scale);
  const sae::Sae& model = folded ? *folded : trainer.model();
  auto evaluated = evaluate(model, *raw, comm, train.eval_batch_size, device, cfg.absorption,
                            probes ? &*probes : nullptr, control.stop_requested);
  if (!evaluated) return preempted(train.steps);  // stopped inside the evaluation: resumes at the evaluation
  const double eval_seconds = seconds_since(eval_started);
  const auto& eval = *evaluated;
  check_not_collapsed(eval, train);
  nlohmann::json metrics(eval.metrics);
  metrics.update(activity.summary());
  if (leader) {
    auto exported = sae::export_saelens(model, eval.firing_frequency, cfg.origin);
    exported.cfg["metadata"]["sweep_version"] = sweep_version();
    if (folded) {  // as SAELens records a folded factor: the SAE takes raw activations
      exported.cfg["metadata"]["activation_norm_scaling_factor"] = scale;
      exported.cfg["metadata"]["activation_norm_scaling_factor_folded"] = true;
    }
    write_saelens(job_dir / "sae", exported);
  }

  double tokens = static_cast<double>(train.steps * train.batch_size);
  const auto* pairs = sae::pair_tracker(trainer.state().penalties);
  nlohmann::json result = base_result(cfg);
  result["status"] = "done";
  result["metrics"] = metrics;
  result["absorption_coverage"] = coverage_json(eval.coverage, cfg.absorption);
  if (probes) result["probe_absorption"] = concepts_json(eval.concepts, cfg.probe);
  if (leader) result["export"] = export_checksums(job_dir);  // checked by the report, status and a re-run
  result["train"] = {{"steps", train.steps},
                     {"tokens", tokens},
                     {"seconds", train_seconds},
                     {"tokens_per_second", tokens / std::max(train_seconds, 1e-9)},
                     {"step_ms", 1000.0 * train_seconds / static_cast<double>(std::max<int64_t>(1, train.steps))},
                     {"final_loss", last.loss},
                     {"resumed_from_step", first_step},
                     {"steps_computed_again", computed_again},
                     {"ranks", comm.size()},
                     {"absorption_pairs", !pairs ? "off" : pairs->dense() ? "dense" : "candidates"},
                     {"absorption_tracked_pairs", pairs ? pairs->tracked_pairs() : 0},
                     {"device", device.str()},
                     {"eval_seconds", eval_seconds},
                     {"probe_metric_seconds", eval.probe_seconds}};
  return {JobStatus::Done, result};
}

}  // namespace

torch::Device pick_device(const std::string& setting, int gpu_index) {
  if (setting == "cuda" || (setting == "auto" && torch::cuda::is_available())) {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu_index));
  }
  return torch::Device(torch::kCPU);
}

JobOutcome run_job(const JobConfig& cfg, Communicator& comm, const std::filesystem::path& job_dir,
                   const JobControl& control) {
  JobOutcome outcome;
  try {
    if (comm.is_leader()) std::filesystem::create_directories(job_dir);
    outcome = train_and_evaluate(cfg, comm, job_dir, control);
  } catch (const std::exception& e) {
    outcome = {JobStatus::Failed, failed_result(cfg, error_text(e))};
  }
  if (!comm.is_leader() || outcome.status == JobStatus::Preempted) return outcome;
  if (outcome.status == JobStatus::Failed) spdlog::error("[job {}] failed: {}", cfg.id, outcome.result["error"].get<std::string>());
  try {
    write_json_atomic(job_dir / "result.json", outcome.result);
    if (outcome.status == JobStatus::Done) remove_checkpoints(job_dir);  // the results replace them
  } catch (const std::exception& e) {
    outcome = {JobStatus::Failed, failed_result(cfg, error_text(e))};
    spdlog::error("[job {}] failed: {}", cfg.id, error_text(e));
  }
  return outcome;
}

}  // namespace sweep::worker
