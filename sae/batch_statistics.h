// The statistics of a step that need the whole global batch, gathered per shard into one flat
// buffer so that a group sums them with a single all-reduce: every latent's firing count, the
// tracked pairs' co-firing counts, TopK's residual sums, JumpReLU's L0 share and BatchTopK's
// smallest kept activation.
#pragma once

#include <torch/torch.h>

#include "sae/batch_context.h"
#include "sae/pair_tracker.h"
#include "sae/sae_model.h"

namespace sweep::sae {

struct BatchStatistics {
  torch::Tensor buffer;  // [numel()], no gradient
  int64_t d_sae = 0, pairs = 0, residual = 0, l0 = 0, kept = 0;  // section lengths (residual: d_in)

  int64_t numel() const { return d_sae + pairs + (residual > 0 ? residual + 1 : 0) + l0 + kept; }
  torch::Tensor fired() const { return buffer.narrow(0, 0, d_sae); }                // sum_b a_bi
  torch::Tensor co_fired() const { return buffer.narrow(0, d_sae, pairs); }        // tracked pairs
  torch::Tensor residual_sum() const { return buffer.narrow(0, d_sae + pairs, residual); }  // sum_b e_b
  torch::Tensor residual_square_sum() const { return buffer[d_sae + pairs + residual]; }    // sum_b |e_b|^2
  torch::Tensor l0_share() const { return buffer[numel() - 1]; }  // JumpReLU: sum of the shards' shares
  torch::Tensor kept_min() const { return buffer[numel() - 1]; }  // BatchTopK: sum of the shards' minima
};

// The buffer's layout for this configuration (no data): every rank of a group derives the same.
BatchStatistics statistics_layout(const SaeConfig& cfg, const PairTracker& pairs);

// The batch's firing as packed_firing's bits, from a sparse step's code where it has one.
torch::Tensor firing_bits(const Forward& fwd);

// This shard's statistics. `l0_share` is JumpReLU's (undefined for the other architectures).
BatchStatistics local_statistics(const SaeConfig& cfg, const Forward& fwd, const torch::Tensor& x,
                                 const PairTracker& pairs, const torch::Tensor& l0_share);

}  // namespace sweep::sae
