// The absorption penalty's dense reference: running firing statistics (EMAs of per-latent firing P
// and of the whole co-firing matrix Q) and the penalty on active, co-firing latents with
// near-parallel decoders, all as d_sae x d_sae matrices (absorption.pairs = "dense").
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"

namespace sweep::sae {

// One shard's firing counts in a single flat buffer, so that one all-reduce sums them:
// [0, d_sae) counts sum_b a_bi, then (if present) the d_sae x d_sae counts sum_b a_bi a_bj.
struct FiringCounts {
  torch::Tensor buffer;
  int64_t d_sae = 0;

  torch::Tensor fired() const { return buffer.narrow(0, 0, d_sae); }
  bool has_cofired() const { return buffer.numel() > d_sae; }
  torch::Tensor cofired() const { return buffer.narrow(0, d_sae, d_sae * d_sae).view({d_sae, d_sae}); }
};

// a_bi = 1[f_bi > 0]; co-firing counts only when asked (they cost a B x d_sae^2 product).
FiringCounts count_firing(const torch::Tensor& f, bool with_cofired);

// EMAs, starting at zero: P <- beta P + (1 - beta) p, Q <- beta Q + (1 - beta) q, with
// p = fired / B and q = cofired / B over the *global* batch of B rows.
struct AbsorptionStats {
  torch::Tensor P;  // [d_sae]
  torch::Tensor Q;  // [d_sae, d_sae]
  double decay = 0.99;

  AbsorptionStats() = default;
  AbsorptionStats(int64_t d_sae, double decay, const torch::TensorOptions& options);
  void update(const FiringCounts& global_counts, int64_t global_rows);
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
