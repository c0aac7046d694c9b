// Held-out evaluation of a trained SAE: reconstruction metrics and, on synthetic data,
// metrics against the ground-truth features. Each rank scores a slice; sums are all-reduced.
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

#include "sae/sae_model.h"
#include "sharding/dataset.h"
#include "worker/communicator.h"

namespace sweep::worker {

struct Evaluation {
  std::map<std::string, double> metrics;
  torch::Tensor firing_frequency;  // [d_sae] on the held-out set
};

Evaluation evaluate(const sae::Sae& sae, const sharding::Dataset& data, Communicator& comm,
                    int64_t eval_batch_size, torch::Device device);

}  // namespace sweep::worker
