// Streams the held-out rows in chunks, each split over the group, accumulating metric sums; the
// group agrees before each chunk whether to stop.
#include "worker/evaluate.h"

#include <chrono>
#include <cmath>
#include <optional>

#include "sae/ground_truth.h"
#include "sae/interventions.h"
#include "sae/metrics.h"
#include "worker/group_failure.h"
#include "worker/step_agreement.h"

namespace sweep::worker {

std::optional<Evaluation> evaluate(const sae::Sae& sae, const sharding::Dataset& data, Communicator& comm,
                                   int64_t eval_batch_size, torch::Device device,
                                   const sae::AbsorptionConfig& absorption, const ProbeScoring* probe,
                                   const std::function<bool()>& stop_requested) {
  torch::NoGradGuard no_grad;
  const auto& cfg = sae.config();
  sae::ReconstructionMetrics recon(cfg.d_in, cfg.d_sae);
  std::optional<sae::GroundTruthMetrics> truth;
  std::optional<sae::ClampingInterventions> interventions;
  std::vector<std::pair<int64_t, int64_t>> matched_pairs;  // (parent latent, child latent)
  if (const auto* features = data.true_features()) {
    const sae::GroundTruth ground_truth{features->directions, features->parents};
    truth.emplace(ground_truth, sae.W_dec);
    // A two-level SAE clamps at its levels: Matryoshka's first prefix is the concept level.
    const int64_t concept_width = sae.architecture().concept_width(cfg);
    interventions.emplace(ground_truth,
                          sae::latents_for_features(ground_truth, truth->matched_latent(), sae.W_dec, concept_width),
                          sae.W_dec, kInterventionTargets);
    const auto& latent = truth->matched_latent();
    const auto& parents = features->parents;
    for (size_t child = 0; child < parents.size(); ++child) {
      if (parents[child] < 0) continue;
      const int64_t p = latent[parents[child]], c = latent[child];
      if (p >= 0 && c >= 0 && p != c) matched_pairs.push_back({p, c});
    }
  }
  sae::AbsorptionCoverage coverage(sae.W_dec, matched_pairs, kCoverageTopPairs);
  std::optional<sae::ProbeAbsorption> probe_absorption;
  if (probe) probe_absorption.emplace(probe->probes, data.concept_names(), sae.W_dec, probe->cfg);
  std::chrono::duration<double> probe_time{0};
  int64_t total = data.eval_size();
  for (int64_t chunk = 0; chunk < total; chunk += eval_batch_size) {
    if (agree_at_step_boundary(comm, stop_requested(), false, std::nullopt).stop) return std::nullopt;
    int64_t len = std::min(eval_batch_size, total - chunk);
    int64_t begin = chunk + len * comm.rank() / comm.size();
    int64_t end = chunk + len * (comm.rank() + 1) / comm.size();
    auto rows = agree_on(comm, [&] { return end > begin ? data.eval_rows(begin, end - begin) : sharding::Rows{}; });
    if (end <= begin) continue;
    auto fwd = sae.forward(rows.activations.to(device));
    recon.add(rows.activations, fwd);
    if (truth) truth->add(rows.feature_acts, fwd.f);
    if (interventions) interventions->add(rows.activations, fwd.x_hat, fwd.f, rows.feature_acts);
    coverage.add(fwd.f);
    if (probe_absorption) {
      const auto started = std::chrono::steady_clock::now();
      auto fitting_half = torch::arange(begin, end, torch::kLong).remainder(2) == 0;  // by held-out position
      probe_absorption->add(rows.activations, fwd.f, rows.labels.on, rows.labels.labelled, fitting_half);
      probe_time += std::chrono::steady_clock::now() - started;
    }
  }
  comm.all_reduce_sum(recon.sums());
  comm.all_reduce_sum(coverage.sums());
  Evaluation out;
  out.metrics = recon.result();
  out.firing_frequency = recon.firing_frequency();
  out.coverage = coverage.result(absorption);
  if (probe_absorption) {
    const auto started = std::chrono::steady_clock::now();
    out.concepts = probe_absorption->finish([&](torch::Tensor& sums) { comm.all_reduce_sum(sums); });
    for (const auto& [name, value] : sae::ProbeAbsorption::summary(out.concepts)) out.metrics[name] = value;
    probe_time += std::chrono::steady_clock::now() - started;
    out.probe_seconds = probe_time.count();
  }
  if (truth) {
    comm.all_reduce_sum(truth->sums());
    for (const auto& [name, value] : truth->result()) out.metrics[name] = value;
    comm.all_reduce_sum(interventions->sums());
    for (const auto& [name, value] : interventions->result()) out.metrics[name] = value;
    // The share of matched pairs in the flagged region (NaN without any matched pair).
    double in_region = 0;
    for (const auto& pair : out.coverage) in_region += pair.matched && pair.in_region;
    out.metrics["gt_pairs_matched"] = static_cast<double>(matched_pairs.size());
    out.metrics["gt_pairs_in_region"] = matched_pairs.empty() ? std::nan("") : in_region / matched_pairs.size();
  }
  return out;
}

}  // namespace sweep::worker
