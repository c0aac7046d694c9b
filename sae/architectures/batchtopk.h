// batchtopk (Bussmann et al., as SAELens does it): a training step keeps the sae.k x B largest
// ReLU'd pre-activations of its batch shard; inference keeps those above one threshold, an EMA of
// the smallest activation kept in training, averaged over the group's shards every step. Matryoshka
// (sae/architectures/matryoshka.cpp) is a BatchTopK with a loss per nested prefix.
#pragma once

#include "sae/architectures/topk.h"

namespace sweep::sae {

class BatchTopk : public TopkFamily {
 public:
  void add_parameters(Sae& sae) const override;
  torch::Tensor activate(const Sae& sae, const torch::Tensor& pre) const override;
  torch::Tensor train_activation(const Sae& sae, const torch::Tensor& pre) const override;
  int64_t statistics_numel(const SaeConfig& cfg) const override { return TopkFamily::statistics_numel(cfg) + 1; }
  ArchShare local_statistics(const Sae& sae, const Forward& fwd, const torch::Tensor& x,
                             const BatchContext& batch) const override;
  void after_reduction(Sae& sae, const torch::Tensor& section, int64_t shards) const override;
  void export_saelens(const Sae& sae, SaeLensExport& out) const override;
};

ArchitectureEntry batchtopk_architecture();

}  // namespace sweep::sae
