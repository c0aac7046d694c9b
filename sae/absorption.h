// The absorption penalty's dense reference: running firing statistics (EMAs of per-latent firing P
// and of the whole co-firing matrix Q) and the penalty on active, co-firing latents with
// near-parallel decoders, all as d_sae x d_sae matrices (absorption.pairs = "dense").
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"

namespace sweep::sae {

// EMAs, starting at zero: P <- beta P + (1 - beta) p, Q <- beta Q + (1 - beta) q, with
// p = fired / B and q = cofired / B over the *global* batch of B rows.
struct AbsorptionStats {
  torch::Tensor P;  // [d_sae]
  torch::Tensor Q;  // [d_sae, d_sae]
  double decay = 0.99;

  AbsorptionStats() = default;
  AbsorptionStats(int64_t d_sae, double decay, const torch::TensorOptions& options);
  // fired [d_sae] = sum_b a_bi and cofired [d_sae * d_sae] = sum_b a_bi a_bj, summed over shards.
  // P and Q become new tensors (copies of the stats taken before keep theirs).
  void update(const torch::Tensor& fired, const torch::Tensor& cofired, int64_t global_rows);
};

// R_ij = Q_ij / (P_i P_j) for lift, Q_ij / P_j for conditional (entries with P = 0 are 0).
torch::Tensor ratio_matrix(const AbsorptionStats& stats, RatioKind kind);

// Flagged pairs: i != j, P_i and P_j > activation_threshold, cos_ij > tau, R_ij > rho.
torch::Tensor flagged_mask(const torch::Tensor& cosines, const torch::Tensor& ratios,
                           const torch::Tensor& P, const AbsorptionConfig& cfg);

// Decoder cosine matrix C_ij = <d_i, d_j> / (|d_i| |d_j|), with gradient.
torch::Tensor decoder_cosines(const torch::Tensor& W_dec);

struct AbsorptionPenalty {
  torch::Tensor loss;     // sum over flagged (i, j) of (R_ij - rho) * C_ij; grad through C only
  torch::Tensor flagged;  // ordered pairs (i, j) flagged, a float scalar left on the device
  torch::Tensor flagged_short_history;  // of them, pairs whose Q has under 5 / (1 - beta) updates
  int64_t flagged_pairs() const { return flagged.item<int64_t>(); }  // reads the device
};

AbsorptionPenalty absorption_penalty(const torch::Tensor& W_dec, const AbsorptionStats& stats,
                                     const AbsorptionConfig& cfg);

}  // namespace sweep::sae
