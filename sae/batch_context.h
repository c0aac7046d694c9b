// What a loss needs to know about the global batch when it sees only this rank's shard:
// its size, the number of equal shards, and a hook that sums a tensor over all shards.
#pragma once

#include <functional>

#include <torch/torch.h>

namespace sweep::sae {

struct BatchContext {
  int64_t global_rows = 0;
  int64_t num_shards = 1;
  // Sums a tensor (no gradient) over every shard of the global batch; identity in one process.
  // A loss calls it the same number of times with the same shapes on every batch, whatever the
  // data: a rank that failed mid-step replays the rest of the step's sums from an earlier step's.
  std::function<torch::Tensor(torch::Tensor)> global_sum = [](torch::Tensor t) { return t; };

  // Mean over the global batch of per-row values, as this shard's share: averaging the
  // shares (and their gradients) over all shards gives the global mean.
  torch::Tensor mean_share(const torch::Tensor& per_row) const {
    return per_row.sum() * (static_cast<double>(num_shards) / static_cast<double>(global_rows));
  }
};

}  // namespace sweep::sae
