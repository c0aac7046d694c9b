// Absorption penalty maths (dense reference): firing counts, their EMAs, the ratio matrix and the penalty.
// Works from counts so that shards' counts can be summed before the EMA is applied once.
#include "sae/absorption.h"

namespace sweep::sae {

AbsorptionStats::AbsorptionStats(int64_t d_sae, double decay_, const torch::TensorOptions& options)
    : P(torch::zeros({d_sae}, options)), Q(torch::zeros({d_sae, d_sae}, options)), decay(decay_) {}

void AbsorptionStats::update(const torch::Tensor& fired, const torch::Tensor& cofired, int64_t global_rows) {
  torch::NoGradGuard no_grad;
  double w = (1.0 - decay) / static_cast<double>(global_rows);
  P = (P * decay).add_(fired, w);
  Q = (Q * decay).add_(cofired.view_as(Q), w);
}

torch::Tensor ratio_matrix(const AbsorptionStats& stats, RatioKind kind) {
  torch::NoGradGuard no_grad;
  const auto& P = stats.P;
  auto denom = kind == RatioKind::Lift ? torch::outer(P, P) : P.unsqueeze(0).expand_as(stats.Q);
  return torch::where(denom > 0, stats.Q / denom.clamp_min(1e-30), torch::zeros_like(stats.Q));
}

torch::Tensor flagged_mask(const torch::Tensor& cosines, const torch::Tensor& ratios,
                           const torch::Tensor& P, const AbsorptionConfig& cfg) {
  torch::NoGradGuard no_grad;
  auto active = P > cfg.activation_threshold;
  auto both_active = active.unsqueeze(1).logical_and(active.unsqueeze(0));
  auto off_diagonal = torch::eye(P.size(0), P.options().dtype(torch::kBool)).logical_not();
  return both_active.logical_and(off_diagonal)
      .logical_and(cosines > cfg.dot_threshold)
      .logical_and(ratios > cfg.ratio_threshold);
}

torch::Tensor decoder_cosines(const torch::Tensor& W_dec) {
  auto unit = W_dec / W_dec.norm(2, 1, true).clamp_min(1e-12);
  return unit.mm(unit.t());
}

AbsorptionPenalty absorption_penalty(const torch::Tensor& W_dec, const AbsorptionStats& stats,
                                     const AbsorptionConfig& cfg) {
  auto cosines = decoder_cosines(W_dec);
  auto ratios = ratio_matrix(stats, cfg.ratio);
  auto mask = flagged_mask(cosines.detach(), ratios, stats.P, cfg);
  auto weight = torch::where(mask, ratios - cfg.ratio_threshold, torch::zeros_like(ratios));
  AbsorptionPenalty out;
  out.loss = (weight * cosines).sum();
  out.flagged = mask.sum().to(cosines.scalar_type());
  out.flagged_short_history = torch::zeros_like(out.flagged);  // dense Q has every step's history
  return out;
}

}  // namespace sweep::sae
