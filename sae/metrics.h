// Held-out evaluation metrics of an SAE (reconstruction quality and sparsity), accumulated
// as sums in one flat double buffer so shards can all-reduce it before the final figures.
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

#include "sae/sae_model.h"

namespace sweep::sae {

class ReconstructionMetrics {
 public:
  ReconstructionMetrics(int64_t d_in, int64_t d_sae);

  void add(const torch::Tensor& x, const Forward& fwd);
  // The running sums (CPU, float64); all-reduce in place across shards before result().
  torch::Tensor& sums() { return sums_; }
  // mse, explained_variance, cossim, l2_ratio (these two over rows with x != 0), l0, l1,
  // dead_fraction, dense_fraction, eval_tokens.
  std::map<std::string, double> result() const;
  // Firing frequency of every latent on the rows seen so far.
  torch::Tensor firing_frequency() const;

 private:
  int64_t d_in_, d_sae_;
  torch::Tensor sums_;
};

}  // namespace sweep::sae
