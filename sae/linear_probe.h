// Linear probes on raw activations: one logistic regression per concept, one against the rest, as
// SAEBench trains its first-letter probes (Adam on minibatches, positives weighted by
// negatives / positives, the learning rate decayed exponentially, light weight decay). They are a
// property of the data, not of an SAE: a sweep trains them once and scores every job against them.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace sweep::sae {

struct LinearProbes {
  torch::Tensor weight;  // [n_concepts, d_in]
  torch::Tensor bias;    // [n_concepts]

  // [n, n_concepts] logits of rows x [n, d_in]: positive where a probe says its concept is on.
  torch::Tensor scores(const torch::Tensor& x) const { return torch::addmm(bias, x, weight.t()); }
  // [n_concepts, d_in] unit probe directions.
  torch::Tensor directions() const { return weight / weight.norm(2, 1, true).clamp_min(1e-12); }
};

struct ProbeTraining {
  int64_t epochs = 50;
  int64_t batch_size = 4096;
  double lr = 1e-2;        // decayed exponentially over the epochs to end_lr
  double end_lr = 1e-5;
  double weight_decay = 1e-4;
  uint64_t seed = 0;       // the minibatches' order
};

// x [n, d_in] raw activations; on [n, n_concepts] 0/1 labels. The rows are scaled by one factor
// (their root-mean-square entry) while training, so the result does not depend on the activations'
// scale; the probes returned read raw activations. Deterministic for a given thread count.
LinearProbes train_linear_probes(const torch::Tensor& x, const torch::Tensor& on, const ProbeTraining& training = {});

}  // namespace sweep::sae
