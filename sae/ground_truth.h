// Metrics against known ground-truth features (synthetic data): matching true directions to
// latents, MCC, MMCS, per-feature F1 and the feature-absorption rate of parent features.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sweep::sae {

struct GroundTruth {
  torch::Tensor directions;      // [n_features, d_in], unit rows
  std::vector<int64_t> parents;  // [n_features], -1 for roots
};

class GroundTruthMetrics {
 public:
  // Matches every true feature to a latent by maximum-weight matching on |cos(decoder, truth)|.
  GroundTruthMetrics(const GroundTruth& truth, const torch::Tensor& W_dec);

  // feature_acts: [B, n_features] true activations; f: [B, d_sae] latent activations.
  void add(const torch::Tensor& feature_acts, const torch::Tensor& f);
  // Counts (CPU, float64); all-reduce in place across shards before result().
  torch::Tensor& sums() { return sums_; }
  // gt_mcc, gt_mmcs, gt_f1, gt_absorption (NaN when no parent qualifies), gt_absorption_parents.
  std::map<std::string, double> result() const;

  const std::vector<int64_t>& matched_latent() const { return matched_; }
  // A parent needs this many held-out samples with, and without, an active child.
  static constexpr double kMinSamplesPerCase = 20;

 private:
  int64_t n_features_;
  std::vector<int64_t> matched_;  // latent per true feature, -1 if none
  torch::Tensor matched_index_;   // the same as a tensor
  torch::Tensor matched_cos_;     // [n_features] |cos| of the matched pair (0 if none)
  torch::Tensor best_cos_;        // [n_features] max cos to any latent
  torch::Tensor child_of_;        // [n_features, n_features], 1 where row is a child of column
  torch::Tensor has_children_;    // [n_features] bool
  torch::Tensor sums_;
};

}  // namespace sweep::sae
