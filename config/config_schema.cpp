// The table of sweep-file keys with their defaults and checks. Defaults give a sweep on the
// embedded synthetic data set under which a plain relu SAE visibly absorbs parent features.
#include "config/config_schema.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <regex>
#include <sstream>

#include "config/job_settings.h"
#include "report/verdicts.h"
#include "sae/architecture.h"
#include "sae/penalty.h"
#include "sae/sparse_code.h"
#include "sharding/normalization.h"
#include "worker/job_config.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;
using Check = SettingCheck;
using namespace setting_checks;
// The structs the rows fill (config/job_settings.cpp applies them).
using Data = sharding::DataConfig;
using Synthetic = sharding::SyntheticConfig;
using Origin = sae::ActivationOrigin;
using Sae = sae::SaeConfig;
using Probe = sae::ProbeAbsorptionConfig;

// The most held-out rows a job scores: every job evaluates all of them (measured: about 17 s per
// million rows per job, three jobs side by side on 2 cores), so 2^24 is minutes and 10^9 would be
// hours of every job.
constexpr double kMaxEvalTokens = 16777216;
using Train = worker::TrainConfig;

// Minutes in the sweep file, seconds in the struct.
Setting checkpoint_minutes() {
  return {"train.checkpoint_minutes", ValueKind::Float, Train{}.checkpoint_seconds / 60.0, above(0),
          "minutes of training between checkpoints when checkpoint_every = 0", false, false, typeid(Train),
          [](void* t, const json& v) { static_cast<Train*>(t)->checkpoint_seconds = 60.0 * v.get<double>(); }};
}

// A sweep's name names one directory under runs/: never a path that could lead elsewhere.
Check path_component() {
  return [](const json& v) {
    auto s = v.get<std::string>();
    const bool control = std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
    if (s.find('/') == std::string::npos && s.find('\\') == std::string::npos && !control && s != "." && s != "..") {
      return std::string();
    }
    return std::string("must be a single directory name (no '/', control characters such as a newline, '.' or "
                       "'..'), as it names the default output directory runs/<name> and the report; choose a name "
                       "without them");
  };
}
Check slurm_time() {
  return [](const json& v) {
    auto s = v.get<std::string>();
    return s.empty() || slurm_time_seconds(s) ? "" : "must be HH:MM:SS or D-HH:MM:SS (minutes and seconds below 60)";
  };
}
// A word that goes into an #SBATCH line as it is: a partition or account name (lists with commas).
Check slurm_word() {
  return [](const json& v) {
    return std::regex_match(v.get<std::string>(), std::regex("[A-Za-z0-9_.,+-]*"))
               ? ""
               : "may hold only letters, digits and _ . , + -";
  };
}
Check sbatch_options() {
  return [](const json& v) {
    for (const auto& item : v) {
      auto s = item.get<std::string>();
      if (s.rfind("-", 0) != 0 || s.find('\n') != std::string::npos) {
        return "each item must be one sbatch option on one line, starting with '-' (got " + item.dump() + ")";
      }
    }
    return std::string();
  };
}

// Replica axes name job settings (checked when the sweep is read, after the schema exists).
Check job_setting_names() {
  return [](const json& v) {
    for (const auto& item : v) {
      const auto name = item.get<std::string>();
      if (find_key(name) && is_job_setting(name)) continue;
      auto near = closest_key(name);
      return "each item must name a job setting, got \"" + name + "\"" +
             (near ? " (did you mean \"" + *near + "\"?)" : std::string());
    }
    return std::string();
  };
}

// Help text that names a constant shows its value from the code (0.2 as "20%").
std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
std::string percent(double share) { return number(100 * share) + "%"; }

std::vector<KeySpec> build_schema() {
  using K = ValueKind;
  return {
      {"name", K::String, "", path_component(), "sweep name; output goes to runs/<name> (default: the file's stem)", false},
      field("seed", &worker::JobConfig::seed, at_least(0), "seed of the SAE initialisation"),

      enum_field("data.source", &Data::source, {{"synthetic", Data::Source::Synthetic}, {"files", Data::Source::Files}, {"saelens", Data::Source::Saelens}},
                 "activation source: the built-in synthetic data, .safetensors/.npy files, or a SAELens activation cache"),
      field("data.eval_tokens", &Data::eval_tokens, closed_range(1, kMaxEvalTokens),
            "held-out rows, never trained on; at most 2^24: every job scores them all, at about 17 s per million "
            "rows on 2 CPU cores"),
      field("data.seed", &Data::seed, at_least(0), "seed of the data (synthetic features, shuffles, split)"),
      field("data.paths", &Data::paths, none(), "files: globs of .safetensors / .npy shards"),
      field("data.tensor", &Data::tensor, none(), "files: tensor name inside .safetensors"),
      field("data.path", &Data::path, none(), "saelens: the directory of a SAELens activation cache (what Dataset.save_to_disk wrote)", {true, true}),
      enum_field("data.normalize", &Data::normalize, {{"none", Data::Normalize::None}, {"expected_norm", Data::Normalize::ExpectedNorm}},
                 "expected_norm: train on rows scaled by one factor to a mean norm of sqrt(d_in) (estimated once from " +
                     std::to_string(sharding::kNormSampleRows) +
                     " training rows and stored in plan.json), as SAELens's \"expected_average_only_in\" does; metrics and "
                     "exported SAEs are on the raw scale (the factor folded into the weights)",
                 {true, true}),
      field("data.ground_truth", &Data::ground_truth, none(), "files: a .safetensors with the true features and every row's activations (the layout `sweep data export` writes), for the gt_* metrics", {true, true}),
      field("data.labels", &Data::labels, none(),
       "labels for the probe-based absorption metric (probe_*): a .safetensors or .npy with a class or concepts per "
       "activation row, in data.paths order (`sweep data labels first-letter` writes one from token ids), or "
       "\"parents\": one concept per parent feature of the ground truth",
       {true, true}),
      field("data.model_name", &Origin::model_name, none(), "export metadata: model the activations came from"),
      field("data.hook_name", &Origin::hook_name, none(), "export metadata: hook point of the activations; saelens: also the cache's activation column (default: its only Array2D column)"),
      field("data.hook_layer", &Origin::hook_layer, at_least(0), "export metadata: layer of the hook"),
      field("data.context_size", &Origin::context_size, at_least(1), "export metadata: context size"),
      field("data.d_in", &Synthetic::d_in, at_least(1), "synthetic: activation dimension"),
      field("data.n_roots", &Synthetic::n_roots, at_least(1), "synthetic: root features"),
      field("data.branching", &Synthetic::branching, at_least(0), "synthetic: children per non-leaf feature"),
      field("data.depth", &Synthetic::depth, at_least(1), "synthetic: levels per tree, roots included"),
      field("data.exclusive_children", &Synthetic::exclusive_children, none(), "synthetic: at most one child of a parent fires"),
      field("data.p_max", &Synthetic::p_max, half_open(0, 1), "synthetic: firing probability of the most frequent root"),
      field("data.p_min", &Synthetic::p_min, half_open(0, 1), "synthetic: firing probability of the rarest root"),
      field("data.child_prob", &Synthetic::child_prob, half_open(0, 1), "synthetic: P(child fires | parent fires)"),
      field("data.child_cosine", &Synthetic::child_cosine, open_range(-1, 1), "synthetic: cosine between a child's direction and its parent's"),
      field("data.orthogonalize_steps", &Synthetic::orthogonalize_steps, at_least(0), "synthetic: steps spreading the feature directions apart, as SynthSAEBench orthogonalises them (each 2 n_features^2 d_in multiply-adds; 0: random directions)"),
      field("data.magnitude_mean", &Synthetic::magnitude_mean, above(0), "synthetic: mean feature magnitude"),
      field("data.magnitude_std", &Synthetic::magnitude_std, at_least(0), "synthetic: magnitude spread"),
      field("data.noise_std", &Synthetic::noise_std, at_least(0), "synthetic: Gaussian noise per dimension (a dense background: no row is zero)"),
      field("data.correlation_rank", &Synthetic::correlation_rank, at_least(0), "synthetic: shared factors of the roots' correlated firing (0: independent)"),
      field("data.correlation_strength", &Synthetic::correlation_strength, right_open(0, 1), "synthetic: share of each root's firing variable from the shared factors"),

      field("sae.arch", &Sae::arch, [](const json& v) { return one_of(sae::architecture_names())(v); },
           "SAE architecture (sae/architectures/)"),
      field("sae.d_sae", &Sae::d_sae, at_least(1), "number of latents"),
      field("train.steps", &Train::steps, at_least(1), "optimiser steps"),
      field("train.batch_size", &Train::batch_size, at_least(1), "global batch (all ranks of a job together)"),
      field("train.lr", &Train::lr, above(0), "Adam learning rate"),
      field("train.warmup_steps", &Train::warmup_steps, at_least(0), "linear learning-rate warm-up"),
      enum_field("train.recon_loss", &sae::LossConfig::recon, {{"mse", sae::ReconLoss::MSE}, {"l2norm", sae::ReconLoss::L2Norm}}, "mse: mean ||x-x_hat||^2; l2norm: mean ||x-x_hat||"),
      field("train.log_every", &Train::log_every, at_least(1), "steps between metrics.jsonl lines"),
      field("train.eval_batch_size", &Train::eval_batch_size, at_least(1), "rows per evaluation chunk"),
      field("train.divergence_factor", &Train::divergence_factor, above(1), "a job fails as diverged when its loss exceeds this many times its first step's", {false}),
      {"train.ranks_per_job", K::Int, 1, at_least(1), "ranks that train one job together (data parallel)", false},
      field("train.checkpoint_every", &Train::checkpoint_every, at_least(0), "steps between checkpoints (0: every train.checkpoint_minutes)", {false}),
      checkpoint_minutes(),
      field("train.device", &Train::device, one_of({"auto", "cpu", "cuda"}), "torch device"),
      enum_field("train.step", &Sae::step, {{"auto", sae::StepMode::Auto}, {"dense", sae::StepMode::Dense}, {"sparse", sae::StepMode::Sparse}},
       "sparse: decode and back-propagate over each row's active latents only; auto: sparse while a row holds at most " +
           percent(sae::kSparseDensityOnCpu) + " of the latents on average on a CPU, " + percent(sae::kSparseDensityOnGpu) +
           " on a GPU (jumprelu counts those within half a bandwidth below the threshold too)",
       {true, true}),
      enum_field("train.code_width", &Sae::code_sizes, {{"auto", sae::CodeSizes::Auto}, {"batch", sae::CodeSizes::OfTheBatch}, {"planned", sae::CodeSizes::Planned}},
       "the size of a sparse step's code, its entries (where the architecture does not fix it, as topk does): batch: its "
       "own batch's (one more device read a step: free on a CPU, a synchronisation on a GPU); planned: " +
           number(sae::kCodeHeadroom) + " x the previous step's, no read, a step with more computed again; auto: batch on "
           "a CPU, planned on a GPU",
       {true, true}),
      enum_field("train.matmul_dtype", &Sae::matmul, {{"float32", sae::MatmulDtype::Float32}, {"bfloat16", sae::MatmulDtype::BFloat16}},
       "the training step's matrix products: float32, or bfloat16 inputs with float32 results (weights, optimiser, "
       "losses, evaluation and export stay float32); faster where the device multiplies bfloat16 natively (GPUs, CPUs "
       "with AVX512-BF16 or AMX: `sweep doctor` says), not bit for bit float32's", {true, true}),

      field("probe.max_k", &Probe::max_k, at_least(1), "largest k of the k-sparse probes that find each concept's main latents", {true, true}),
      field("probe.f1_jump_threshold", &Probe::f1_jump, at_least(0),
       "a concept's main latents grow from k to k + 1 while the k-sparse probe's F1 rises by more than this", {true, true}),
      field("probe.absorbing_cosine", &Probe::absorbing_cosine, closed_range(-1, 1),
       "absorption fraction: a latent other than the main ones counts as absorbing with at least this decoder cosine "
       "to the probe", {true, true}),
      field("probe.max_absorbing_latents", &Probe::max_absorbing, at_least(1), "absorption fraction: latents that may absorb a row together", {true, true}),
      field("probe.full_absorption_cosine", &Probe::full_cosine, closed_range(-1, 1),
       "full absorption: the top latent's decoder cosine to the probe, at least", {true, true}),
      field("probe.projection_share", &Probe::projection_share, half_open(0, 1),
       "share of a row's probe projection that absorbing latents must carry to count", {true, true}),
      field("probe.min_rows", &Probe::min_rows, at_least(1),
       "concepts with fewer scored held-out rows (on, and the probe agrees) stay out of the probe_* means", {true, true}),
      field("probe.min_f1", &Probe::min_f1, closed_range(0, 1),
       "concepts whose probe reads them with a lower F1 on the held-out rows are not scored (nor in the probe_* means)", {true, true}),
      {"probe.train_rows", K::Int, 65536, at_least(2),
       "labelled training rows the probes on the raw activations train on (once per sweep)", true, true},

      {"slurm.nodes", K::Int, 1, at_least(1), "sweep submit: nodes per Slurm job"},
      {"slurm.ntasks_per_node", K::Int, 1, at_least(1), "sweep submit: ranks per node (one per GPU on a GPU node)"},
      {"slurm.gpus_per_task", K::Int, 0, at_least(0), "sweep submit: GPUs per rank (0: ask for none)"},
      {"slurm.time", K::String, "", slurm_time(), "sweep submit: time limit HH:MM:SS or D-HH:MM:SS (empty: the partition's)"},
      {"slurm.partition", K::String, "", slurm_word(), "sweep submit: partition (empty: the cluster's default)"},
      {"slurm.account", K::String, "", slurm_word(), "sweep submit: account to charge (empty: your default)"},
      {"slurm.array", K::Int, 0, at_least(0), "sweep submit: K > 0 submits a job array of K tasks sharing the sweep"},
      {"slurm.max_requeues", K::Int, 10, at_least(0), "sweep submit: times an unfinished sweep requeues itself"},
      {"slurm.signal_lead", K::Int, 120, closed_range(1, 65535), "sweep submit: seconds before the time limit at which the sweep checkpoints"},
      {"slurm.sbatch_args", K::StringList, json::array(), sbatch_options(), "sweep submit: extra sbatch options, one #SBATCH line each"},
      field("run.jobs_per_process", &RunSettings::jobs_per_process, at_least(0),
       "jobs one process trains side by side, each on its share of the cores (0: one per core on a CPU, one on a GPU); results do not depend on it", {false}),
      field("run.max_attempts", &RunSettings::max_attempts, at_least(1), "failed attempts after which a job stays failed (a resume retries it until then)", {false}),
      field("run.progress_seconds", &RunSettings::progress_seconds, above(0), "seconds between a running job's progress lines (without a terminal)", {false}),
      field("run.heartbeat_seconds", &RunSettings::heartbeat_seconds, above(0), "seconds between a running job's heartbeats in its state.json", {false}),
      field("run.stale_after_seconds", &RunSettings::stale_after_seconds, above(0), "a running job whose heartbeat is older than this counts as interrupted", {false}),

      {"report.ev_tolerance", K::Float, kDefaultEvTolerance, at_least(0),
       "the report's single best point per objective: the best among those whose mean explained variance is at most "
       "this much below their baseline's (the report also names every point on the absorption / explained-variance "
       "front, whatever their cost); changing it rewrites the report, never a job",
       false},
      {"grid.include_baseline", K::Bool, true, none(), "add a job with every training penalty off per grid point of the other keys"},
      {"grid.replicas", K::StringList, json::array(), job_setting_names(), "grid axes whose values are replicas of one grid point, besides seed and data.seed: the report gives each point's mean, sd and paired differences over them"},
  };
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The shared rows, with each architecture's own after the last row of its section (a row two of
// them declare, once) and the training penalties' before the probe's.
std::vector<KeySpec> schema_with_plugins() {
  auto rows = build_schema();
  auto section_of = [](const std::string& key) { return key.substr(0, key.find('.') + 1); };
  for (const auto& entry : sae::architectures()) {
    for (const auto& row : entry.settings) {
      if (std::any_of(rows.begin(), rows.end(), [&](const KeySpec& k) { return k.key == row.key; })) continue;
      auto last = std::find_if(rows.rbegin(), rows.rend(), [&](const KeySpec& k) { return section_of(k.key) == section_of(row.key); });
      rows.insert(last.base(), row);
    }
  }
  std::vector<KeySpec> penalties;
  for (const auto& penalty : sae::penalties()) penalties.insert(penalties.end(), penalty.settings.begin(), penalty.settings.end());
  auto before_probe = std::find_if(rows.begin(), rows.end(), [](const KeySpec& k) { return k.key.rfind("probe.", 0) == 0; });
  rows.insert(before_probe, penalties.begin(), penalties.end());
  return rows;
}

// The sections of a sweep file: the shared ones, with each penalty's after [absorption].
const std::vector<std::string>& sections() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"data", "sae", "train"};
    for (const auto& penalty : sae::penalties()) {
      if (std::find(out.begin(), out.end(), penalty.section) == out.end()) out.push_back(penalty.section);
    }
    out.insert(out.end(), {"probe", "run", "grid", "report", "slurm"});
    return out;
  }();
  return names;
}

}  // namespace

const std::vector<KeySpec>& config_schema() {
  static const std::vector<KeySpec> schema = schema_with_plugins();
  return schema;
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& spec : config_schema()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

std::optional<std::string> closest_key(const std::string& key) {
  std::optional<std::string> best;
  size_t best_distance = SIZE_MAX;
  for (const auto& spec : config_schema()) {
    // Compare both the full key and the part after the section, so "dot_treshold" finds it too;
    // a candidate counts only when the edits are few for its length.
    auto leaf = spec.key.substr(spec.key.find('.') + 1);
    for (const auto& candidate : {spec.key, leaf}) {
      size_t d = edit_distance(key, candidate);
      if (d <= std::max<size_t>(1, candidate.size() / 3) && d < best_distance) {
        best_distance = d;
        best = spec.key;
      }
    }
  }
  return best;
}

std::optional<std::string> closest_section(const std::string& name) {
  for (const auto& section : sections()) {
    if (edit_distance(name, section) <= 2) return section;
  }
  return std::nullopt;
}

bool is_section(const std::string& name) {
  return std::find(sections().begin(), sections().end(), name) != sections().end();
}

std::string section_names() {
  std::string out;
  for (const auto& section : sections()) out += (out.empty() ? "" : ", ") + section;
  return out;
}

bool is_job_setting(const std::string& key) {
  return key.rfind("grid.", 0) != 0 && key.rfind("slurm.", 0) != 0 && key.rfind("report.", 0) != 0;
}

json default_config() {
  json out = json::object();
  for (const auto& spec : config_schema()) {
    if (is_job_setting(spec.key)) out[spec.key] = spec.default_value;
  }
  return out;
}

std::optional<int64_t> slurm_time_seconds(const std::string& text) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"((?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2}))"))) return std::nullopt;
  int64_t days = m[1].matched ? std::stoll(m[1]) : 0, hours = std::stoll(m[2]), minutes = std::stoll(m[3]),
          seconds = std::stoll(m[4]);
  if (minutes >= 60 || seconds >= 60) return std::nullopt;
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
}

const char* kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::Int: return "an integer";
    case ValueKind::Float: return "a number";
    case ValueKind::Bool: return "true or false";
    case ValueKind::String: return "a string";
    case ValueKind::StringList: return "a list of strings";
    case ValueKind::IntList: return "a list of integers";
    case ValueKind::FloatList: return "a list of numbers";
  }
  return "?";
}

}  // namespace sweep::launcher
