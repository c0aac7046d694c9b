// What TopK, BatchTopK and Matryoshka share: the auxiliary loss that revives dead latents (its
// residual sums in the step's statistics), and the settings of both (sae.k and the aux loss's).
#pragma once

#include "sae/architecture.h"

namespace sweep::sae {

// The settings every member of the TopK family reads, beyond the shared ones: their rows.
std::vector<Setting> topk_family_settings();

// A member of the TopK family: its statistics start with the residual sums of the aux loss.
class TopkFamily : public Architecture {
 public:
  int64_t statistics_numel(const SaeConfig& cfg) const override { return cfg.d_in + 1; }
  ArchShare local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& x,
                             const BatchContext& batch) const override;
  ArchLosses losses(const ArchLossInputs& in) const override;
  torch::Tensor dead_next(const SaeConfig& cfg, const torch::Tensor& tokens_since_fired) const override;
  std::vector<SettingProblem> check(const SaeConfig& cfg) const override;

 protected:
  // The reconstruction term (Matryoshka's: over its prefixes).
  virtual torch::Tensor reconstruction(const ArchLossInputs& in) const;
};

ArchitectureEntry topk_architecture();

}  // namespace sweep::sae
