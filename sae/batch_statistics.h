// The statistics of a step that need the whole global batch, gathered per shard into one flat
// buffer so that a group sums them with a single all-reduce: every latent's firing count, each
// penalty's section (the absorption penalty's co-firing counts of its tracked pairs), TopK's
// residual sums, JumpReLU's L0 share and BatchTopK's smallest kept activation.
#pragma once

#include <torch/torch.h>

#include "sae/batch_context.h"
#include "sae/penalty.h"
#include "sae/sae_model.h"

namespace sweep::sae {

struct BatchStatistics {
  torch::Tensor buffer;  // [numel()], no gradient
  int64_t d_sae = 0, penalty_total = 0, residual = 0, l0 = 0, kept = 0;  // section lengths (residual: d_in)
  std::vector<int64_t> penalty_numel;  // each penalty slot's section, in order; penalty_total in all

  int64_t numel() const { return d_sae + penalty_total + (residual > 0 ? residual + 1 : 0) + l0 + kept; }
  torch::Tensor fired() const { return buffer.narrow(0, 0, d_sae); }                // sum_b a_bi
  torch::Tensor penalty_section(size_t slot) const;  // penalty slot `slot`'s statistics
  torch::Tensor residual_sum() const { return buffer.narrow(0, d_sae + penalty_total, residual); }  // sum_b e_b
  torch::Tensor residual_square_sum() const { return buffer[d_sae + penalty_total + residual]; }    // sum_b |e_b|^2
  torch::Tensor l0_share() const { return buffer[numel() - 1]; }  // JumpReLU: sum of the shards' shares
  torch::Tensor kept_min() const { return buffer[numel() - 1]; }  // BatchTopK: sum of the shards' minima
};

// The buffer's layout for this configuration (no data): every rank of a group derives the same.
BatchStatistics statistics_layout(const SaeConfig& cfg, const Penalties& penalties);

// The batch's firing as packed_firing's bits, from a sparse step's code where it has one.
torch::Tensor firing_bits(const Forward& fwd);

// This shard's statistics. `l0_share` is JumpReLU's (undefined for the other architectures).
BatchStatistics local_statistics(const SaeConfig& cfg, const Forward& fwd, const torch::Tensor& x,
                                 const Penalties& penalties, const torch::Tensor& l0_share);

}  // namespace sweep::sae
