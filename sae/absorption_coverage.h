// Where the pairs that absorb lie against the penalty's thresholds at the end of training: for
// every matched (parent, child) pair of true features, the decoder cosine of their latents and
// their co-activation ratio on held-out rows, and whether the pair is in the flagged region (both
// latents active, cosine > tau, ratio > rho); the same for the highest-cosine latent pairs, which
// data without ground truth has alone.
#pragma once

#include <vector>

#include <torch/torch.h>

#include "sae/sae_config.h"

namespace sweep::sae {

struct CoveragePair {
  int64_t i, j;         // latents; for a matched pair i is the parent's, j the child's
  double cosine;        // of their decoder rows
  double ratio;         // max of R_ij and R_ji on held-out rows (the same for lift)
  bool matched;         // a (parent, child) pair of true features
  bool active;          // both latents fire on more than activation_threshold of the rows
  bool in_region;       // active, cosine > tau and ratio > rho
};

class AbsorptionCoverage {
 public:
  // matched: (parent latent, child latent) pairs, distinct latents; top_pairs: how many of the
  // highest-cosine pairs to add.
  AbsorptionCoverage(const torch::Tensor& W_dec, const std::vector<std::pair<int64_t, int64_t>>& matched,
                     int64_t top_pairs);

  // f: [B, d_sae] latent activations of held-out rows.
  void add(const torch::Tensor& f);
  // Counts (CPU, float64): rows, firing per latent, co-firing per pair; all-reduce before result().
  torch::Tensor& sums() { return sums_; }
  // Matched pairs first, then the top pairs that are not matched ones.
  std::vector<CoveragePair> result(const AbsorptionConfig& cfg) const;

 private:
  int64_t d_sae_, n_matched_;
  torch::Tensor i_, j_, cosine_;  // all measured pairs, on W_dec's device
  torch::Tensor sums_;
};

}  // namespace sweep::sae
