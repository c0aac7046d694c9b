// Held-out evaluation of a trained SAE: reconstruction metrics and, on synthetic data,
// metrics against the ground-truth features. Each rank scores a slice; sums are all-reduced.
#pragma once

#include <functional>
#include <map>
#include <optional>
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

// Collective. nullopt when the group was asked to stop (checked before every chunk, so a stop
// never waits for a long evaluation).
std::optional<Evaluation> evaluate(const sae::Sae& sae, const sharding::Dataset& data, Communicator& comm,
                                   int64_t eval_batch_size, torch::Device device,
                                   const std::function<bool()>& stop_requested);

}  // namespace sweep::worker
