// Ground truth for activation files (data.ground_truth): the true feature directions, each
// feature's parent and every row's feature activations, in the layout `sweep data export` writes:
// directions [n_features, d_in], parents [n_features] (-1 for roots), and the rows' activations
// as CSR (feature_acts_indptr [rows + 1], feature_acts_indices, feature_acts_values) over the rows
// of the activation files concatenated in order.
#pragma once

#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "sharding/synthetic.h"
#include "sharding/true_features.h"

namespace sweep::sharding {

// What `sweep data export` says of the rows it wrote: how much superposition and how dense.
struct ExportSummary {
  int64_t rows = 0;
  int64_t zero_rows = 0;         // activation rows that are exactly zero
  int64_t featureless_rows = 0;  // rows with no true feature active (noise alone)
  double mean_l0 = 0;            // true features active per row
  // Mean over features of the largest |cosine| with another feature's direction (SynthSAEBench's
  // mean-max overlap).
  double mean_max_overlap = 0;
};

// Writes rows [0, rows) of a synthetic source with their ground truth in that layout, the
// activations under "activations", and the labels of its parent features as concepts (the CSR
// "concepts_*" with their "names", sharding/labels.h) (`sweep data export`).
ExportSummary write_synthetic_with_ground_truth(const std::filesystem::path& file, const SyntheticSource& source,
                                                int64_t rows);

class GroundTruthFile {
 public:
  // Throws DataError naming the file and what is wrong: a missing tensor, or rows or d_in that
  // differ from the activation files' (`rows`, `d_in`).
  GroundTruthFile(const std::filesystem::path& file, int64_t rows, int64_t d_in);

  const TrueFeatures& features() const { return features_; }
  // [rows.size(), n_features] float32: the true activations of the listed global rows.
  torch::Tensor feature_acts(const std::vector<int64_t>& rows) const;

 private:
  TrueFeatures features_;
  torch::Tensor indptr_, indices_, values_;
};

}  // namespace sweep::sharding
