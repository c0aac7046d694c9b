// The statistics of a step that need the whole global batch, gathered per shard into one flat
// buffer so that a group sums them with a single all-reduce: every latent's firing count, each
// penalty's section (the absorption penalty's co-firing counts of its tracked pairs), then the
// architecture's (TopK's residual sums, JumpReLU's L0 share, BatchTopK's smallest kept activation).
#pragma once

#include <torch/torch.h>

#include "sae/batch_context.h"
#include "sae/penalty.h"
#include "sae/sae_model.h"

namespace sweep::sae {

struct BatchStatistics {
  torch::Tensor buffer;  // [numel()], no gradient
  int64_t d_sae = 0, penalty_total = 0, arch = 0;  // section lengths
  std::vector<int64_t> penalty_numel;  // each penalty slot's section, in order; penalty_total in all
  torch::Tensor carried;  // the architecture's ArchShare::carried (with gradient; not in the buffer)

  int64_t numel() const { return d_sae + penalty_total + arch; }
  torch::Tensor fired() const { return buffer.narrow(0, 0, d_sae); }  // sum_b a_bi
  torch::Tensor penalty_section(size_t slot) const;                  // penalty slot `slot`'s statistics
  torch::Tensor arch_section() const { return buffer.narrow(0, d_sae + penalty_total, arch); }
};

// The buffer's layout for this configuration (no data): every rank of a group derives the same.
BatchStatistics statistics_layout(const SaeConfig& cfg, const Penalties& penalties);

// The batch's firing as packed_firing's bits, from a sparse step's code where it has one.
torch::Tensor firing_bits(const Forward& fwd);

// This shard's statistics, of the `sae`'s step forward `fwd` on its shard `x`.
BatchStatistics local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& x, const Penalties& penalties,
                                 const BatchContext& batch);

}  // namespace sweep::sae
