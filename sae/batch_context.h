// What a loss needs to know about the global batch when it sees only this rank's shard: its size
// and the number of equal shards. Sums over the shards arrive as reduced BatchStatistics.
#pragma once

#include <torch/torch.h>

namespace sweep::sae {

struct BatchContext {
  int64_t global_rows = 0;
  int64_t num_shards = 1;

  // Mean over the global batch of per-row values, as this shard's share: averaging the
  // shares (and their gradients) over all shards gives the global mean.
  torch::Tensor mean_share(const torch::Tensor& per_row) const {
    return per_row.sum() * (static_cast<double>(num_shards) / static_cast<double>(global_rows));
  }
};

}  // namespace sweep::sae
