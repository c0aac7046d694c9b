// Ground-truth metrics: counts per true feature (TP/FP/FN of "matched latent fires") and per
// parent feature (misses with and without an active child) accumulated over held-out rows.
#include "sae/ground_truth.h"

#include <cmath>

#include "sae/linear_assignment.h"

namespace sweep::sae {
namespace {
// Per-feature count slots in the flat sums buffer (each n_features long).
enum Count : int64_t { kTruePos, kFalsePos, kFalseNeg, kWithChild, kMissWithChild, kAlone, kMissAlone, kCounts };
}  // namespace

GroundTruthMetrics::GroundTruthMetrics(const GroundTruth& truth, const torch::Tensor& W_dec)
    : n_features_(truth.directions.size(0)) {
  torch::NoGradGuard no_grad;
  auto dirs = truth.directions.to(torch::kCPU, torch::kDouble);
  auto dec = W_dec.to(torch::kCPU, torch::kDouble);
  auto cos = (dirs / dirs.norm(2, 1, true)).mm((dec / dec.norm(2, 1, true)).t());
  matched_ = max_weight_matching(cos.abs());
  matched_index_ = torch::tensor(matched_, torch::kLong);
  matched_cos_ = torch::zeros({n_features_}, torch::kDouble);
  for (int64_t i = 0; i < n_features_; ++i) {
    if (matched_[i] >= 0) matched_cos_[i] = cos[i][matched_[i]].abs();
  }
  best_cos_ = n_features_ > 0 && cos.size(1) > 0 ? std::get<0>(cos.max(1)) : torch::zeros({n_features_}, torch::kDouble);
  child_of_ = torch::zeros({n_features_, n_features_}, torch::kFloat);
  for (int64_t c = 0; c < n_features_; ++c) {
    if (truth.parents[c] >= 0) child_of_[c][truth.parents[c]] = 1.0;
  }
  has_children_ = child_of_.sum(0) > 0;
  sums_ = torch::zeros({kCounts * n_features_}, torch::kDouble);
}

void GroundTruthMetrics::add(const torch::Tensor& feature_acts, const torch::Tensor& f) {
  torch::NoGradGuard no_grad;
  auto truth = (feature_acts.to(torch::kCPU) > 0);
  auto is_matched = matched_index_ >= 0;
  auto fired = f.to(torch::kCPU).index_select(1, matched_index_.clamp_min(0)) > 0;
  fired = fired.logical_and(is_matched.unsqueeze(0));
  auto child_active = truth.to(torch::kFloat).mm(child_of_) > 0;
  auto missed = fired.logical_not();
  auto with_child = truth.logical_and(child_active);
  auto alone = truth.logical_and(child_active.logical_not());
  auto count = [](const torch::Tensor& t) { return t.sum(0).to(torch::kDouble); };
  std::vector<torch::Tensor> counts(kCounts);
  counts[kTruePos] = count(fired.logical_and(truth));
  counts[kFalsePos] = count(fired.logical_and(truth.logical_not()));
  counts[kFalseNeg] = count(missed.logical_and(truth));
  counts[kWithChild] = count(with_child);
  counts[kMissWithChild] = count(with_child.logical_and(missed));
  counts[kAlone] = count(alone);
  counts[kMissAlone] = count(alone.logical_and(missed));
  sums_.add_(torch::cat(counts));
}

std::map<std::string, double> GroundTruthMetrics::result() const {
  auto c = sums_.view({kCounts, n_features_});
  auto tp = c[kTruePos], fp = c[kFalsePos], fn = c[kFalseNeg];
  // F1 over features that were active or predicted at least once on the held-out set.
  auto denom = 2 * tp + fp + fn;
  auto seen = denom > 0;
  auto f1 = (2 * tp / denom.clamp_min(1)).masked_select(seen);
  // Absorption: parents with a matched latent and enough samples in both cases.
  auto qualifies = has_children_.logical_and(matched_index_ >= 0)
                       .logical_and(c[kWithChild] >= kMinSamplesPerCase)
                       .logical_and(c[kAlone] >= kMinSamplesPerCase);
  auto miss_child = c[kMissWithChild] / c[kWithChild].clamp_min(1);
  auto miss_alone = c[kMissAlone] / c[kAlone].clamp_min(1);
  auto absorption = (miss_child - miss_alone).clamp_min(0).masked_select(qualifies);
  double n = std::max<int64_t>(1, n_features_);
  return {
      {"gt_mcc", matched_cos_.sum().item<double>() / n},
      {"gt_mmcs", best_cos_.sum().item<double>() / n},
      {"gt_f1", f1.numel() ? f1.mean().item<double>() : 0.0},
      {"gt_absorption", absorption.numel() ? absorption.mean().item<double>() : std::nan("")},
      {"gt_absorption_parents", static_cast<double>(absorption.numel())},
  };
}

}  // namespace sweep::sae
