// The absorption penalty's state across steps: the firing EMA P of every latent and the co-firing
// EMA Q of the tracked pairs, which are either every pair (the dense reference) or the candidates
// whose decoder cosine can exceed tau, kept provably complete by a drift bound (see README).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "sae/absorption.h"
#include "sae/sae_config.h"

namespace sweep::sae {

class PairTracker {
 public:
  PairTracker() = default;  // the penalty is off
  PairTracker(const AbsorptionConfig& cfg, int64_t d_sae, const torch::TensorOptions& options);

  bool enabled() const { return P.defined(); }
  bool dense() const { return dense_.Q.defined(); }
  // Pairs whose co-firing is tracked: unordered candidates, or all d_sae (d_sae - 1) / 2.
  int64_t tracked_pairs() const;
  // Length of the pairs' co-firing counts in a step's statistics (0 when the penalty is off).
  int64_t counts_numel() const;
  // Candidates count co-firing from the batch's firing as bits (packed_firing), dense from the firing itself.
  bool counts_from_bits() const { return enabled() && !dense(); }
  // This shard's co-firing counts of the tracked pairs, from its firing [B, d_sae] (bool, or
  // firing()'s 0/1); `bits`: packed_firing(fired) where the caller holds it (made here otherwise).
  torch::Tensor count_co_firing(const torch::Tensor& fired, const torch::Tensor& bits = {}) const;
  // One EMA update from the group's summed counts over the global batch of `global_rows` rows.
  // Into new tensors: a copy of the tracker taken before keeps its state (a step computed again).
  void update(const torch::Tensor& fired, const torch::Tensor& co_fired, int64_t global_rows);
  AbsorptionPenalty penalty(const torch::Tensor& W_dec) const;
  // The flagged ordered pairs (i, j) as [m, 2], sorted (reads the device: for checks and tools).
  torch::Tensor flagged_pairs(const torch::Tensor& W_dec) const;

  // Candidates only (false for dense): a device flag, true when the pairs must be found anew
  // before the next step: the drift bound could let a pair outside reach tau, or the refresh
  // interval is up. Reading it is left to the caller's one read per step.
  torch::Tensor refresh_due(const torch::Tensor& W_dec) const;
  // Finds the candidates anew from W_dec (reads the device); pairs still present keep their
  // history. Returns a note when there were too many and the tracker turned dense ("" otherwise).
  std::string refresh(const torch::Tensor& W_dec);
  // The candidate pairs (i < j); undefined when dense.
  const torch::Tensor& pair_i() const { return i_; }
  const torch::Tensor& pair_j() const { return j_; }

  // Checkpoint: every tensor of the state by name. A restored state may track another number of
  // pairs, or be dense: restore() takes the shapes from the tensors and checks that they agree.
  std::vector<std::pair<std::string, torch::Tensor>> tensors() const;
  // `updates`: the steps trained (one EMA update each). Throws std::runtime_error.
  void restore(const std::map<std::string, torch::Tensor>& saved, int64_t updates);
  // [dense, candidates, step of the last search, d_in]: what another rank needs to shape its
  // state before the tensors are broadcast to it.
  torch::Tensor shape_header() const;
  void reshape(const torch::Tensor& header, int64_t updates);

  torch::Tensor P;  // [d_sae]

 private:
  // The candidates examined (see positions_to_visit): every one that could be flagged, at least.
  struct CandidateFlags {
    torch::Tensor at;       // [m] their positions among the candidates
    torch::Tensor i, j;     // [m] the pairs
    torch::Tensor ij, ji;   // [m] flagged as (i, j) and as (j, i)
    torch::Tensor weights;  // [m] sum over the flagged orders of (R - rho)
  };
  // W_dec's unit rows and each one's distance from its row at the last search, at most (the
  // bfloat16 reference's distance plus the reference's own error).
  struct RowsSeen {
    torch::Tensor unit, drift;
  };
  // RowsSeen of W_dec as it stands, kept until W_dec changes (its version counter): the step's
  // penalty reuses what the previous step's refresh_due computed from the same weights.
  const RowsSeen& rows_seen(const torch::Tensor& W_dec) const;
  void forget_rows_seen() const { seen_ = RowsSeen(); }
  CandidateFlags candidate_flags(const RowsSeen& rows) const;
  // tau - candidate_margin: every pair above it is tracked, which keeps the drift bound's promise.
  double needed_threshold() const { return cfg_.dot_threshold - cfg_.candidate_margin; }
  // The search's threshold: tau - candidate_margin, lowered towards tau - watch_margin as far as
  // about watch_pairs_per_latent x d_sae pairs allow (reads the device).
  double watch_threshold(const torch::Tensor& unit) const;
  torch::Tensor corrected_Q() const;  // candidates: Q as if tracked from the first update (README)
  void become_dense();

  AbsorptionConfig cfg_;
  int64_t d_sae_ = 0;
  torch::TensorOptions options_;
  int64_t updates_ = 0;      // EMA updates so far
  AbsorptionStats dense_;    // dense: P (shared with P above) and the whole Q
  // Candidates: pairs (i_ < j_), their Q, and the update count at which each began to be tracked.
  torch::Tensor i_, j_, Q_, entry_;
  // At the last search: unit rows in bfloat16, how far each is from the exact row, and each row's
  // largest cosine to a row it is not paired with. They bound the cosines of the pairs outside.
  torch::Tensor reference_, reference_error_, outside_max_;
  // Each candidate's cosine at the last search: with the drift, it rules pairs out of reach of tau
  // without their cosine being computed.
  torch::Tensor cosine_;
  int64_t searched_at_ = 0;  // updates_ at the last search
  mutable RowsSeen seen_;  // rows_seen(): the last one, of W_dec at seen_version_
  mutable const void* seen_of_ = nullptr;
  mutable int64_t seen_version_ = 0;
};

}  // namespace sweep::sae
