// Maximum-weight bipartite matching (linear assignment), used to pair ground-truth
// feature directions with SAE latents by |cosine| similarity.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace sweep::sae {

// weights: [n_rows, n_cols] float32/float64 CPU tensor (any n_rows, n_cols >= 0,
// rectangular either way); every entry must be finite.
// Returns, for every row, the column it is matched to, or -1 if the row is unmatched
// (only possible when n_rows > n_cols).
// Maximises the total weight of a matching of size min(n_rows, n_cols). Deterministic.
// Runs in O(min^2 * max) time for min = min(n_rows, n_cols), max = max(n_rows, n_cols).
std::vector<int64_t> max_weight_matching(const torch::Tensor& weights);

}  // namespace sweep::sae
