// Field-by-field mapping from the validated key table to the typed settings of sae/,
// sharding/ and worker/.
#include "launcher/job_settings.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

sae::Arch arch_of(const std::string& s) {
  if (s == "topk") return sae::Arch::TopK;
  if (s == "jumprelu") return sae::Arch::JumpReLU;
  return sae::Arch::ReLU;
}

}  // namespace

sharding::DataConfig to_data_config(const json& c) {
  sharding::DataConfig d;
  d.source = c["data.source"] == "files" ? sharding::DataConfig::Source::Files : sharding::DataConfig::Source::Synthetic;
  d.eval_tokens = c["data.eval_tokens"];
  d.seed = c["data.seed"];
  d.paths = c["data.paths"].get<std::vector<std::string>>();
  d.tensor = c["data.tensor"];
  auto& s = d.synthetic;
  s.d_in = c["data.d_in"];
  s.n_roots = c["data.n_roots"];
  s.branching = c["data.branching"];
  s.depth = c["data.depth"];
  s.exclusive_children = c["data.exclusive_children"];
  s.p_max = c["data.p_max"];
  s.p_min = c["data.p_min"];
  s.child_prob = c["data.child_prob"];
  s.child_cosine = c["data.child_cosine"];
  s.magnitude_mean = c["data.magnitude_mean"];
  s.magnitude_std = c["data.magnitude_std"];
  s.noise_std = c["data.noise_std"];
  return d;
}

worker::JobConfig to_job_config(const PlannedJob& job) {
  const json& c = job.resolved;
  worker::JobConfig cfg;
  cfg.id = job.id;
  cfg.params = job.params;
  cfg.resolved = c;
  cfg.seed = c["seed"];
  cfg.data = to_data_config(c);
  cfg.origin.model_name = c["data.model_name"];
  cfg.origin.hook_name = c["data.hook_name"];
  cfg.origin.hook_layer = c["data.hook_layer"];
  cfg.origin.context_size = c["data.context_size"];
  cfg.origin.dataset_path = c["data.source"] == "files" ? c["data.paths"].dump() : "synthetic";

  auto& s = cfg.sae;
  s.arch = arch_of(c["sae.arch"]);
  s.d_sae = c["sae.d_sae"];
  s.k = c["sae.k"];
  s.k_aux = c["sae.k_aux"];
  s.aux_weight = c["sae.aux_weight"];
  s.dead_after_tokens = c["sae.dead_after_tokens"];
  s.bandwidth = c["sae.bandwidth"];
  s.target_l0 = c["sae.target_l0"];
  s.sparsity_penalty = c["sae.sparsity_penalty"];
  s.init_threshold = c["sae.init_threshold"];
  // d_in comes from the data: the synthetic setting here, the shards' width for files (set at open).
  s.d_in = c["data.d_in"];

  cfg.loss.recon = c["train.recon_loss"] == "l2norm" ? sae::ReconLoss::L2Norm : sae::ReconLoss::MSE;
  cfg.loss.l1_penalty = c["train.l1_penalty"];

  auto& a = cfg.absorption;
  a.enabled = c["absorption.enabled"];
  a.penalty = c["absorption.penalty"];
  a.activation_threshold = c["absorption.activation_threshold"];
  a.dot_threshold = c["absorption.dot_threshold"];
  a.ratio_threshold = c["absorption.ratio_threshold"];
  a.ratio = c["absorption.ratio"] == "conditional" ? sae::RatioKind::Conditional : sae::RatioKind::Lift;
  a.ema_decay = c["absorption.ema_decay"];
  a.pairs = c["absorption.pairs"] == "dense" ? sae::PairTracking::Dense : sae::PairTracking::Candidates;
  a.candidate_margin = c["absorption.candidate_margin"];
  a.refresh_every = c["absorption.refresh_every"];
  a.max_candidate_fraction = c["absorption.max_candidate_fraction"];

  auto& t = cfg.train;
  t.steps = c["train.steps"];
  t.batch_size = c["train.batch_size"];
  t.lr = c["train.lr"];
  t.warmup_steps = c["train.warmup_steps"];
  t.log_every = c["train.log_every"];
  t.eval_batch_size = c["train.eval_batch_size"];
  t.device = c["train.device"];
  t.checkpoint_every = c["train.checkpoint_every"];
  t.checkpoint_seconds = 60.0 * c["train.checkpoint_minutes"].get<double>();
  // train.ranks_per_job is the launcher's business: it decides the group a job runs on.
  return cfg;
}

}  // namespace sweep::launcher
