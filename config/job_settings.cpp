// The typed settings of sae/, sharding/ and worker/ filled from the validated key table: one row
// per typed field names the schema key that fills it. The same rows check that the structs'
// own defaults equal the schema's, so a default lives in the schema and nowhere else disagrees.
#include "config/job_settings.h"

#include <map>

#include "config/config_schema.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

// A typed field of a settings struct S and the key that fills it.
template <typename S>
struct Field {
  const char* key;
  std::function<void(S&, const json&)> set;
  std::function<json(const S&)> get;
};

// A plain field: the JSON value converts to the member's type.
template <typename S, typename Part, typename T>
Field<S> field(const char* key, Part S::*part, T Part::*member) {
  return {key, [=](S& s, const json& v) { (s.*part).*member = v.get<T>(); },
          [=](const S& s) { return json((s.*part).*member); }};
}
template <typename S, typename T>
Field<S> field(const char* key, T S::*member) {
  return {key, [=](S& s, const json& v) { s.*member = v.get<T>(); }, [=](const S& s) { return json(s.*member); }};
}

// An enum field: the key's strings and their values.
template <typename S, typename Part, typename E>
Field<S> named(const char* key, Part S::*part, E Part::*member, std::map<std::string, E> names) {
  return {key, [=](S& s, const json& v) { (s.*part).*member = names.at(v.get<std::string>()); },
          [=](const S& s) {
            for (const auto& [name, value] : names) {
              if (value == (s.*part).*member) return json(name);
            }
            return json();
          }};
}

using worker::JobConfig;

const std::vector<Field<sharding::DataConfig>>& data_fields() {
  using D = sharding::DataConfig;
  using Y = sharding::SyntheticConfig;
  static const std::vector<Field<D>> fields = {
      {"data.source", [](D& d, const json& v) { d.source = v == "files" ? D::Source::Files : D::Source::Synthetic; },
       [](const D& d) { return json(d.source == D::Source::Files ? "files" : "synthetic"); }},
      field("data.eval_tokens", &D::eval_tokens),
      field("data.seed", &D::seed),
      field("data.paths", &D::paths),
      field("data.tensor", &D::tensor),
      field("data.ground_truth", &D::ground_truth),
      field("data.labels", &D::labels),
      field("data.d_in", &D::synthetic, &Y::d_in),
      field("data.n_roots", &D::synthetic, &Y::n_roots),
      field("data.branching", &D::synthetic, &Y::branching),
      field("data.depth", &D::synthetic, &Y::depth),
      field("data.exclusive_children", &D::synthetic, &Y::exclusive_children),
      field("data.p_max", &D::synthetic, &Y::p_max),
      field("data.p_min", &D::synthetic, &Y::p_min),
      field("data.child_prob", &D::synthetic, &Y::child_prob),
      field("data.child_cosine", &D::synthetic, &Y::child_cosine),
      field("data.orthogonalize_steps", &D::synthetic, &Y::orthogonalize_steps),
      field("data.magnitude_mean", &D::synthetic, &Y::magnitude_mean),
      field("data.magnitude_std", &D::synthetic, &Y::magnitude_std),
      field("data.noise_std", &D::synthetic, &Y::noise_std),
      field("data.correlation_rank", &D::synthetic, &Y::correlation_rank),
      field("data.correlation_strength", &D::synthetic, &Y::correlation_strength),
  };
  return fields;
}

const std::vector<Field<JobConfig>>& job_fields() {
  using J = JobConfig;
  using A = sae::AbsorptionConfig;
  using T = worker::TrainConfig;
  using P = sae::ProbeAbsorptionConfig;
  static const std::vector<Field<J>> fields = {
      field("seed", &J::seed),
      field("data.model_name", &J::origin, &sae::ActivationOrigin::model_name),
      field("data.hook_name", &J::origin, &sae::ActivationOrigin::hook_name),
      field("data.hook_layer", &J::origin, &sae::ActivationOrigin::hook_layer),
      field("data.context_size", &J::origin, &sae::ActivationOrigin::context_size),
      field("sae.arch", &J::sae, &sae::SaeConfig::arch),
      field("sae.d_sae", &J::sae, &sae::SaeConfig::d_sae),
      field("sae.k", &J::sae, &sae::SaeConfig::k),
      field("sae.matryoshka_widths", &J::sae, &sae::SaeConfig::matryoshka_widths),
      field("sae.matryoshka_weights", &J::sae, &sae::SaeConfig::matryoshka_weights),
      field("sae.k_aux", &J::sae, &sae::SaeConfig::k_aux),
      field("sae.aux_weight", &J::sae, &sae::SaeConfig::aux_weight),
      field("sae.dead_after_tokens", &J::sae, &sae::SaeConfig::dead_after_tokens),
      field("sae.bandwidth", &J::sae, &sae::SaeConfig::bandwidth),
      field("sae.target_l0", &J::sae, &sae::SaeConfig::target_l0),
      field("sae.sparsity_penalty", &J::sae, &sae::SaeConfig::sparsity_penalty),
      field("sae.init_threshold", &J::sae, &sae::SaeConfig::init_threshold),
      named("train.step", &J::sae, &sae::SaeConfig::step,
            {{"auto", sae::StepMode::Auto}, {"dense", sae::StepMode::Dense}, {"sparse", sae::StepMode::Sparse}}),
      named("train.code_width", &J::sae, &sae::SaeConfig::code_sizes,
            {{"auto", sae::CodeSizes::Auto}, {"batch", sae::CodeSizes::OfTheBatch}, {"planned", sae::CodeSizes::Planned}}),
      named("train.matmul_dtype", &J::sae, &sae::SaeConfig::matmul,
            {{"float32", sae::MatmulDtype::Float32}, {"bfloat16", sae::MatmulDtype::BFloat16}}),
      named("train.recon_loss", &J::loss, &sae::LossConfig::recon,
            {{"mse", sae::ReconLoss::MSE}, {"l2norm", sae::ReconLoss::L2Norm}}),
      field("train.l1_penalty", &J::loss, &sae::LossConfig::l1_penalty),
      field("absorption.enabled", &J::absorption, &A::enabled),
      field("absorption.penalty", &J::absorption, &A::penalty),
      field("absorption.activation_threshold", &J::absorption, &A::activation_threshold),
      field("absorption.dot_threshold", &J::absorption, &A::dot_threshold),
      field("absorption.ratio_threshold", &J::absorption, &A::ratio_threshold),
      named("absorption.ratio", &J::absorption, &A::ratio,
            {{"lift", sae::RatioKind::Lift}, {"conditional", sae::RatioKind::Conditional}}),
      field("absorption.ema_decay", &J::absorption, &A::ema_decay),
      named("absorption.pairs", &J::absorption, &A::pairs,
            {{"candidates", sae::PairTracking::Candidates}, {"dense", sae::PairTracking::Dense}}),
      field("absorption.candidate_margin", &J::absorption, &A::candidate_margin),
      field("absorption.watch_margin", &J::absorption, &A::watch_margin),
      field("absorption.watch_pairs_per_latent", &J::absorption, &A::watch_pairs_per_latent),
      field("absorption.refresh_every", &J::absorption, &A::refresh_every),
      field("absorption.max_candidate_fraction", &J::absorption, &A::max_candidate_fraction),
      field("probe.max_k", &J::probe, &P::max_k),
      field("probe.f1_jump_threshold", &J::probe, &P::f1_jump),
      field("probe.absorbing_cosine", &J::probe, &P::absorbing_cosine),
      field("probe.max_absorbing_latents", &J::probe, &P::max_absorbing),
      field("probe.full_absorption_cosine", &J::probe, &P::full_cosine),
      field("probe.projection_share", &J::probe, &P::projection_share),
      field("probe.min_rows", &J::probe, &P::min_rows),
      field("probe.min_f1", &J::probe, &P::min_f1),
      field("train.steps", &J::train, &T::steps),
      field("train.batch_size", &J::train, &T::batch_size),
      field("train.lr", &J::train, &T::lr),
      field("train.warmup_steps", &J::train, &T::warmup_steps),
      field("train.log_every", &J::train, &T::log_every),
      field("train.eval_batch_size", &J::train, &T::eval_batch_size),
      field("train.divergence_factor", &J::train, &T::divergence_factor),
      field("train.device", &J::train, &T::device),
      field("train.checkpoint_every", &J::train, &T::checkpoint_every),
      {"train.checkpoint_minutes", [](J& j, const json& v) { j.train.checkpoint_seconds = 60.0 * v.get<double>(); },
       [](const J& j) { return json(j.train.checkpoint_seconds / 60.0); }},
  };
  return fields;
}

const std::vector<Field<RunSettings>>& run_fields() {
  using R = RunSettings;
  static const std::vector<Field<R>> fields = {
      field("run.jobs_per_process", &R::jobs_per_process),
      field("run.max_attempts", &R::max_attempts),
      field("run.progress_seconds", &R::progress_seconds),
      field("run.heartbeat_seconds", &R::heartbeat_seconds),
      field("run.stale_after_seconds", &R::stale_after_seconds),
  };
  return fields;
}

template <typename S>
S fill(const std::vector<Field<S>>& fields, const json& resolved, S s = {}) {
  for (const auto& f : fields) f.set(s, resolved.at(f.key));
  return s;
}

template <typename S>
void add_disagreements(const std::vector<Field<S>>& fields, std::vector<std::string>& out) {
  const S defaults{};
  for (const auto& f : fields) {
    const json want = find_key(f.key)->default_value, got = f.get(defaults);
    bool same = want.is_number() && got.is_number() ? want.get<double>() == got.get<double>() : want == got;
    if (!same) out.push_back(std::string(f.key) + ": schema " + want.dump() + ", struct " + got.dump());
  }
}

}  // namespace

sharding::DataConfig to_data_config(const json& c) { return fill(data_fields(), c); }

RunSettings to_run_settings(const json& c) { return fill(run_fields(), c); }

worker::JobConfig to_job_config(const PlannedJob& job) {
  const json& c = job.resolved;
  worker::JobConfig cfg = fill(job_fields(), c);
  cfg.id = job.id;
  cfg.params = job.params;
  cfg.resolved = c;
  cfg.data = to_data_config(c);
  cfg.origin.dataset_path = c["data.source"] == "files" ? c["data.paths"].dump() : "synthetic";
  // d_in comes from the data: the synthetic setting here, the shards' width for files (set at open).
  cfg.sae.d_in = c["data.d_in"];
  // train.ranks_per_job is the launcher's business: it decides the group a job runs on.
  return cfg;
}

std::vector<std::string> struct_defaults_that_differ_from_the_schema() {
  std::vector<std::string> out;
  add_disagreements(data_fields(), out);
  add_disagreements(job_fields(), out);
  add_disagreements(run_fields(), out);
  return out;
}

}  // namespace sweep::launcher
