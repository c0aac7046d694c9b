// The absorption penalty behind the penalty interface: its statistics are the tracked pairs'
// co-firing counts, its state the pair tracker's EMAs and candidates, its refresh the candidate
// search that the drift bound calls for.
#include "sae/penalties/absorption.h"

#include "sae/sae_model.h"

namespace sweep::sae {
namespace {

class PairPenalty final : public Penalty {
 public:
  PairPenalty(const AbsorptionConfig& cfg, int64_t d_sae, const torch::TensorOptions& options)
      : weight_(cfg.penalty), tracker_(cfg, d_sae, options) {}

  std::unique_ptr<Penalty> clone() const override { return std::make_unique<PairPenalty>(*this); }

  int64_t statistics_numel() const override { return tracker_.counts_numel(); }
  FiringNeeded firing_needed() const override {
    return tracker_.counts_from_bits() ? FiringNeeded::Bits : FiringNeeded::Rows;
  }
  torch::Tensor local_statistics(const ShardFiring& firing) const override {
    return tracker_.count_co_firing(firing.rows, firing.bits);
  }

  torch::Tensor refresh_due(const torch::Tensor& W_dec) const override { return tracker_.refresh_due(W_dec); }
  std::string refresh(const torch::Tensor& W_dec) override { return tracker_.refresh(W_dec); }

  PenaltyLoss loss(const Sae& sae, const torch::Tensor& fired, const torch::Tensor& section, int64_t global_rows,
                   int64_t /*step*/) override {
    {
      torch::NoGradGuard no_grad;
      tracker_.update(fired, section, global_rows);
    }
    auto penalty = tracker_.penalty(sae.W_dec);
    return {weight_ * penalty.loss,
            torch::stack({penalty.loss.detach(), penalty.flagged, penalty.flagged_short_history})};
  }

  std::vector<std::pair<std::string, torch::Tensor>> tensors() const override { return tracker_.tensors(); }
  void restore(const std::map<std::string, torch::Tensor>& saved, int64_t updates) override {
    tracker_.restore(saved, updates);
  }
  torch::Tensor shape_header() const override { return tracker_.shape_header(); }
  void reshape(const torch::Tensor& header, int64_t updates) override { tracker_.reshape(header, updates); }

  const PairTracker& tracker() const { return tracker_; }

 private:
  double weight_;
  PairTracker tracker_;
};

// Dense: P and Q. Candidates: P, the bfloat16 reference rows and two per-row bounds, and the
// pairs (i, j, entry: 8 bytes each, Q: 4), counted at 64 per latent, far more than a usual tau gives.
double pair_state_bytes(const PenaltyContext& c, int64_t d_in) {
  if (!c.absorption.enabled) return 0.0;
  const double d_sae = static_cast<double>(c.d_sae);
  return c.absorption.pairs == PairTracking::Dense
             ? 4.0 * (d_sae * d_sae + d_sae)
             : 4.0 * 3.0 * d_sae + 2.0 * d_sae * static_cast<double>(d_in) + 28.0 * 64.0 * d_sae;
}

}  // namespace

namespace {

// Settings under which the penalty could never fire or never change training.
std::vector<SettingProblem> check_settings(const PenaltyContext& c) {
  const AbsorptionConfig& a = c.absorption;
  std::vector<SettingProblem> problems;
  if (a.ratio == RatioKind::Conditional && a.ratio_threshold >= 1.0) {
    problems.push_back({"absorption.ratio_threshold",
                        "with absorption.ratio = \"conditional\" the ratio Q_ij / P_j is a conditional frequency and "
                        "never exceeds 1, so the penalty could never fire; use a threshold below 1 or absorption.ratio = "
                        "\"lift\""});
  }
  if (a.ratio == RatioKind::Lift && a.ratio_threshold >= 1.0 / a.activation_threshold) {
    problems.push_back({"absorption.ratio_threshold",
                        "a lift Q_ij / (P_i P_j) never exceeds 1 / max(P_i, P_j) < 1 / activation_threshold = " +
                            std::to_string(1.0 / a.activation_threshold) +
                            ", so the penalty could never fire; lower the threshold"});
  }
  if (a.penalty == 0.0) {
    problems.push_back({"absorption.penalty",
                        "a zero penalty never changes training; use the baseline job (absorption.enabled = false) instead"});
  }
  return problems;
}

}  // namespace

PenaltyEntry absorption_penalty_entry() {
  using namespace setting_checks;
  return {"absorption",
          "absorption",
          "absorption.enabled",
          false,
          {
              field("absorption.enabled", &AbsorptionConfig::enabled, none(), "add the absorption penalty"),
              field("absorption.penalty", &AbsorptionConfig::penalty, at_least(0), "lambda"),
              field("absorption.activation_threshold", &AbsorptionConfig::activation_threshold, open_range(0, 1),
                   "a latent is active when its EMA firing rate exceeds this"),
              field("absorption.dot_threshold", &AbsorptionConfig::dot_threshold, open_range(-1, 1),
                   "tau: decoder cosine above which a pair is flagged"),
              field("absorption.ratio_threshold", &AbsorptionConfig::ratio_threshold, above(0),
                   "rho: co-activation ratio above which a pair is flagged"),
              enum_field("absorption.ratio", &AbsorptionConfig::ratio, {{"lift", RatioKind::Lift}, {"conditional", RatioKind::Conditional}},
                         "lift: Q/(P_i P_j); conditional: Q/P_j"),
              field("absorption.ema_decay", &AbsorptionConfig::ema_decay, open_range(0, 1), "beta of the firing EMAs"),
              enum_field("absorption.pairs", &AbsorptionConfig::pairs,
                         {{"candidates", PairTracking::Candidates}, {"dense", PairTracking::Dense}},
                         "candidates: track only pairs whose decoder cosine can exceed tau; dense: every pair (d_sae x "
                         "d_sae, the reference)"),
              field("absorption.candidate_margin", &AbsorptionConfig::candidate_margin, open_range(0, 2),
                   "candidates: every pair with decoder cosine above tau - margin"),
              field("absorption.watch_margin", &AbsorptionConfig::watch_margin, open_range(0, 2),
                   "candidates: also pairs with decoder cosine above tau - watch_margin, while they fit in "
                   "watch_pairs_per_latent, so that a pair's Q has a history when it can first be flagged (at most "
                   "candidate_margin: none)"),
              field("absorption.watch_pairs_per_latent", &AbsorptionConfig::watch_pairs_per_latent, at_least(0),
                   "candidates: the pairs watched beyond tau - candidate_margin stop at about this many per latent"),
              field("absorption.refresh_every", &AbsorptionConfig::refresh_every, at_least(1),
                   "candidates: steps after which the candidates are found anew at the latest"),
              field("absorption.max_candidate_fraction", &AbsorptionConfig::max_candidate_fraction, half_open(0, 1),
                   "candidates: above this share of all pairs the job tracks every pair instead (dense)"),
          },
          {"absorption", "flagged_pairs", "flagged_short_history"},
          [](const PenaltyContext& c) -> std::unique_ptr<Penalty> {
            if (!c.absorption.enabled) return nullptr;
            return std::make_unique<PairPenalty>(c.absorption, c.d_sae, c.options);
          },
          pair_state_bytes,
          check_settings};
}

const PairTracker* pair_tracker(const Penalties& penalties) {
  for (const auto& p : penalties) {
    if (auto* pairs = dynamic_cast<const PairPenalty*>(p.get())) return &pairs->tracker();
  }
  return nullptr;
}

}  // namespace sweep::sae
