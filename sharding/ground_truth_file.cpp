// Writes, reads and checks ground-truth files; expands the CSR rows asked for.
#include "sharding/ground_truth_file.h"

#include <nlohmann/json.hpp>

#include "sharding/data_error.h"
#include "sharding/labels.h"
#include "sharding/safetensors.h"

namespace sweep::sharding {

namespace {

double mean_max_overlap(const torch::Tensor& directions) {
  const int64_t n = directions.size(0), block = 1024;
  if (n < 2) return 0.0;
  double sum = 0;
  for (int64_t first = 0; first < n; first += block) {
    const int64_t rows = std::min(block, n - first);
    auto cosines = directions.narrow(0, first, rows).mm(directions.t()).abs();
    cosines.narrow(1, first, rows).fill_diagonal_(0);
    sum += std::get<0>(cosines.max(1)).sum().item<double>();
  }
  return sum / static_cast<double>(n);
}

}  // namespace

ExportSummary write_synthetic_with_ground_truth(const std::filesystem::path& file, const SyntheticSource& source,
                                                int64_t n) {
  std::vector<torch::Tensor> activations, indices, values, row_counts, concepts_on;
  const ParentConcepts concepts(TrueFeatures{source.directions(), source.parents()});
  ExportSummary summary;
  summary.rows = n;
  const int64_t chunk = 8192;
  for (int64_t first = 0; first < n; first += chunk) {
    auto rows = source.rows(first, std::min(chunk, n - first));
    activations.push_back(rows.activations);
    auto active = rows.feature_acts > 0;
    indices.push_back(active.nonzero().select(1, 1));  // row-major: row by row
    values.push_back(rows.feature_acts.masked_select(active));
    row_counts.push_back(active.sum(1));
    concepts_on.push_back(concepts.rows(rows.feature_acts).on);
    summary.zero_rows += (rows.activations != 0).any(1).logical_not().sum().item<int64_t>();
    summary.featureless_rows += (row_counts.back() == 0).sum().item<int64_t>();
  }
  auto indptr = torch::cat({torch::zeros({1}, torch::kLong), torch::cat(row_counts).cumsum(0)});
  summary.mean_l0 = static_cast<double>(indptr[-1].item<int64_t>()) / static_cast<double>(n);
  summary.mean_max_overlap = mean_max_overlap(source.directions());
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"activations", torch::cat(activations)},
      {"directions", source.directions()},
      {"parents", torch::tensor(source.parents(), torch::kLong)},
      {"feature_acts_indptr", indptr},
      {"feature_acts_indices", torch::cat(indices).to(torch::kLong)},
      {"feature_acts_values", torch::cat(values).to(torch::kFloat)}};
  for (auto& csr : concept_csr(torch::cat(concepts_on))) tensors.push_back(std::move(csr));
  write_safetensors(file, tensors,
                    {{"format", "sweep synthetic data"},
                     {"rows", "0.." + std::to_string(n)},
                     {"names", nlohmann::json(concepts.names()).dump()}});
  return summary;
}

GroundTruthFile::GroundTruthFile(const std::filesystem::path& file, int64_t rows, int64_t d_in) {
  const std::string where = "data.ground_truth = \"" + file.string() + "\": ";
  std::map<std::string, torch::Tensor> tensors;
  try {
    tensors = read_safetensors(file);
  } catch (const std::exception& e) {
    throw DataError(where + e.what());
  }
  auto take = [&](const char* name, int64_t dims) {
    auto it = tensors.find(name);
    if (it == tensors.end() || it->second.dim() != dims) {
      throw DataError(where + "needs a " + std::to_string(dims) + "-d tensor \"" + name +
                      "\"\nHINT: write ground truth in the layout of `sweep data export` (directions, parents, "
                      "feature_acts_indptr, feature_acts_indices, feature_acts_values)");
    }
    return it->second;
  };
  auto directions = take("directions", 2).to(torch::kFloat);
  auto parents = take("parents", 1).to(torch::kLong).contiguous();
  indptr_ = take("feature_acts_indptr", 1).to(torch::kLong).contiguous();
  indices_ = take("feature_acts_indices", 1).to(torch::kLong).contiguous();
  values_ = take("feature_acts_values", 1).to(torch::kFloat).contiguous();
  const int64_t n_features = directions.size(0);
  if (directions.size(1) != d_in) {
    throw DataError(where + "directions have d_in " + std::to_string(directions.size(1)) +
                    " but the activation files have d_in " + std::to_string(d_in));
  }
  if (parents.size(0) != n_features) {
    throw DataError(where + "parents has " + std::to_string(parents.size(0)) + " entries for " +
                    std::to_string(n_features) + " features");
  }
  if (indptr_.size(0) != rows + 1) {
    throw DataError(where + "feature activations for " + std::to_string(indptr_.size(0) - 1) +
                    " rows, but the activation files hold " + std::to_string(rows) +
                    " rows\nHINT: the ground truth must describe the rows of data.paths, in their order");
  }
  const int64_t nnz = indices_.size(0);
  if (values_.size(0) != nnz || indptr_[rows].item<int64_t>() != nnz || (indptr_.diff() < 0).any().item<bool>() ||
      (nnz > 0 && (indices_.min().item<int64_t>() < 0 || indices_.max().item<int64_t>() >= n_features)) ||
      (parents.min().item<int64_t>() < -1) || parents.max().item<int64_t>() >= n_features) {
    throw DataError(where + "the feature activations (CSR) or parents are inconsistent: indptr must rise to the "
                            "number of values, indices and parents must name features");
  }
  features_.directions = directions / directions.norm(2, 1, true).clamp_min(1e-12);
  features_.parents.assign(parents.data_ptr<int64_t>(), parents.data_ptr<int64_t>() + n_features);
}

torch::Tensor GroundTruthFile::feature_acts(const std::vector<int64_t>& rows) const {
  auto out = torch::zeros({static_cast<int64_t>(rows.size()), features_.directions.size(0)}, torch::kFloat);
  const int64_t* indptr = indptr_.data_ptr<int64_t>();
  const int64_t* indices = indices_.data_ptr<int64_t>();
  const float* values = values_.data_ptr<float>();
  auto acts = out.accessor<float, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int64_t k = indptr[rows[r]]; k < indptr[rows[r] + 1]; ++k) acts[static_cast<int64_t>(r)][indices[k]] = values[k];
  }
  return out;
}

}  // namespace sweep::sharding
