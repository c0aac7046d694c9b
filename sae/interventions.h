// Clamping interventions scored on ground truth. For a target root feature T, three ways to
// remove T's knowledge by zeroing latents: base-level (the latents of T's descendants), concept-level
// (T's latent) and coordinated (both). On held-out rows each is scored by
//   removal: the share of the subtree's true contribution c = sum_{i in subtree} a_i g_i that leaves
//            x_hat, sum_b <x_hat_b - x_hat'_b, c_b> / sum_b ||c_b||^2;
//   preservation: how well x_hat' still reconstructs everything else, the explained variance of the
//            rest of the signal r = x - c by x_hat' relative to that by x_hat, both counting only the
//            error orthogonal to c (the error along c is the removal's business).
// An SAE whose latents are exactly the true features removes 100% with preservation 1 (coordinated).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sae/ground_truth.h"

namespace sweep::sae {

enum class ClampStrategy { Base, Concept, Coordinated };
const char* clamp_strategy_name(ClampStrategy strategy);  // "base", "concept", "coordinated"

// Which latents stand for each feature: the matching of the ground-truth metrics, or for a
// two-level SAE (concept_width > 0, the first concept_width latents) a root's best-aligned concept
// latent and any other feature's best-aligned base latent.
std::vector<int64_t> latents_for_features(const GroundTruth& truth, const std::vector<int64_t>& matched,
                                          const torch::Tensor& W_dec, int64_t concept_width);

class ClampingInterventions {
 public:
  // latent_of_feature: from latents_for_features (-1: none). Targets: the roots with a latent, at
  // most max_targets of them, most frequent (lowest index) first.
  ClampingInterventions(const GroundTruth& truth, const std::vector<int64_t>& latent_of_feature,
                        const torch::Tensor& W_dec, int64_t max_targets);

  // Held-out rows: x [B, d_in], the SAE's x_hat and f, the true feature activations [B, n_features].
  void add(const torch::Tensor& x, const torch::Tensor& x_hat, const torch::Tensor& f, const torch::Tensor& feature_acts);
  // Sums (CPU, float64); all-reduce in place across shards before result().
  torch::Tensor& sums() { return sums_; }
  int64_t targets() const { return static_cast<int64_t>(targets_.size()); }
  // clamp_<strategy>_removal and clamp_<strategy>_preservation, means over the targets whose
  // subtree was active on some row (NaN without any), and clamp_targets.
  std::map<std::string, double> result() const;

 private:
  // Built once, indexed for every chunk of rows.
  struct Target {
    torch::Tensor subtree;             // T and its descendants (feature indices)
    torch::Tensor subtree_directions;  // their true directions [|subtree|, d_in]
    std::vector<torch::Tensor> clamped, clamped_rows;  // per strategy: the latents, their W_dec rows
  };
  std::vector<Target> targets_;
  int64_t d_in_;
  torch::Tensor sums_;
};

}  // namespace sweep::sae
