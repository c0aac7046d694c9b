// Labels for the probe-based absorption metric: which concepts each activation row carries.
// A labels file (data.labels) holds either a class per row (the first letter of a word: int, -1
// for rows outside the task) or binary concepts per row as CSR (several may be on at once); data
// with ground truth can instead label each row by the parent features active in it ("parents").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sharding/true_features.h"

namespace sweep::sharding {

// data.labels's value that labels rows from the ground truth instead of a file.
inline constexpr const char* kParentLabels = "parents";

// Labels of some rows: which concepts are on, and which rows take part in the task at all (a row
// of class -1 is in no class, so it is neither a positive nor a negative of any concept).
struct LabelRows {
  torch::Tensor on;        // [n, n_concepts] float32, 1 where the concept is on
  torch::Tensor labelled;  // [n] bool
};

// A labels file in one of the layouts `sweep data labels` and `sweep data export` write:
// - .safetensors with "labels" [rows] (int, -1 for none) and optional metadata "names" (a JSON
//   list, one name per class);
// - .safetensors with "concepts_indptr" [rows + 1] and "concepts_indices" (CSR) and optional
//   "names" (one per concept; without it the concepts are numbered up to the largest index);
// - .npy, 1-D int32 or int64: a class per row.
class LabelFile {
 public:
  // Throws DataError naming the file and what is wrong: no labels tensor, a row count other than
  // the activation files' `rows`, classes or indices outside the names.
  LabelFile(const std::filesystem::path& file, int64_t rows);

  const std::vector<std::string>& names() const { return names_; }
  // The labels of the listed global rows.
  LabelRows rows(const std::vector<int64_t>& rows) const;

 private:
  std::vector<std::string> names_;
  torch::Tensor classes_;           // [rows] int64 (class per row), else undefined
  torch::Tensor indptr_, indices_;  // concepts per row (CSR), else undefined
};

// The concepts of ground truth: one per feature that has children, on in a row where that feature
// or any of its descendants is active. Every row is labelled.
class ParentConcepts {
 public:
  explicit ParentConcepts(const TrueFeatures& truth);

  const std::vector<std::string>& names() const { return names_; }
  // The feature behind each concept.
  const std::vector<int64_t>& features() const { return features_; }
  // feature_acts [n, n_features]: the rows' true activations.
  LabelRows rows(const torch::Tensor& feature_acts) const;

 private:
  std::vector<std::string> names_;
  std::vector<int64_t> features_;
  torch::Tensor covers_;  // [n_features, n_concepts]: 1 where the concept is the feature or an ancestor
};

// Writes a class per row ("labels", int64) with the classes' names, as LabelFile reads it.
void write_class_labels(const std::filesystem::path& file, const torch::Tensor& classes,
                        const std::vector<std::string>& names);
// The CSR tensors ("concepts_indptr", "concepts_indices") of labels `on` [n, n_concepts], for a
// file that LabelFile reads.
std::vector<std::pair<std::string, torch::Tensor>> concept_csr(const torch::Tensor& on);

}  // namespace sweep::sharding
