// The embedded synthetic activation source: a forest of ground-truth feature directions in
// superposition, where a child fires only with its parent, roots may fire in correlated groups,
// and noise gives every row a dense background. Any row is a pure function of (seed, row index).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace sweep::sharding {

struct SyntheticConfig {
  int64_t d_in = 64;
  int64_t n_roots = 64;
  int64_t branching = 4;            // children per non-leaf feature
  int64_t depth = 2;                // levels in each tree, roots included
  bool exclusive_children = true;   // at most one child of a parent fires
  double p_max = 0.4;               // firing probability of the most frequent root
  double p_min = 0.02;              // ... and of the rarest (Zipf-like in between)
  double child_prob = 0.6;          // P(a child fires | parent fires): of any child if exclusive, else of each
  double child_cosine = 0.0;        // cosine between a child's direction and its parent's
  int64_t orthogonalize_steps = 50;  // steps spreading the random directions apart (0: none)
  double magnitude_mean = 1.0;      // folded normal |N(mean, std)|
  double magnitude_std = 0.15;
  double noise_std = 0.05;          // isotropic Gaussian noise per dimension
  // Roots fire through a Gaussian copula: root r fires when Phi(z_r) < p_r, with
  // z_r = sqrt(c) <L_r, g> + sqrt(1 - c) e_r, g ~ N(0, I_rank) shared by the row, L_r a random unit
  // loading and c = correlation_strength. Marginals stay p_r; rank 0 fires roots independently.
  int64_t correlation_rank = 0;
  double correlation_strength = 0.0;
  uint64_t seed = 0;
};

// Rows [first, first + count): x = sum_i a_i g_i (+ noise) and the true activations a.
struct SyntheticRows {
  torch::Tensor activations;    // [count, d_in] float32
  torch::Tensor feature_acts;   // [count, n_features] float32, a_i (0 when inactive)
};

class SyntheticSource {
 public:
  explicit SyntheticSource(const SyntheticConfig& cfg);

  int64_t d_in() const { return cfg_.d_in; }
  int64_t n_features() const { return static_cast<int64_t>(parents_.size()); }
  const torch::Tensor& directions() const { return directions_; }   // [n_features, d_in], unit rows
  const std::vector<int64_t>& parents() const { return parents_; }  // -1 for roots
  // Marginal firing probability of each feature.
  std::vector<double> firing_probability() const;

  SyntheticRows rows(int64_t first, int64_t count) const;

 private:
  void sample_row(int64_t row, float* acts) const;

  SyntheticConfig cfg_;
  torch::Tensor directions_;
  std::vector<int64_t> parents_;
  std::vector<std::vector<int64_t>> children_;
  std::vector<double> root_prob_;
  std::vector<int64_t> roots_;
  std::vector<double> loadings_;  // [n_roots, correlation_rank], unit rows
};

}  // namespace sweep::sharding
