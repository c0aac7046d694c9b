// The true features of data with ground truth (the synthetic source, or a data.ground_truth file):
// what the gt_* metrics match latents against.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace sweep::sharding {

struct TrueFeatures {
  torch::Tensor directions;      // [n_features, d_in], unit rows
  std::vector<int64_t> parents;  // [n_features], -1 for roots
};

}  // namespace sweep::sharding
