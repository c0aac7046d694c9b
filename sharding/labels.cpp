// Reads and checks labels files, derives labels from ground truth, and writes the two layouts.
#include "sharding/labels.h"

#include <nlohmann/json.hpp>

#include "sharding/data_error.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"

namespace sweep::sharding {
namespace {

constexpr const char* kLayouts =
    "HINT: a labels file is a .safetensors with \"labels\" (a class per row, -1 for none) or "
    "\"concepts_indptr\" and \"concepts_indices\" (concepts per row, CSR), or a 1-D int .npy of classes; "
    "`sweep data labels first-letter` writes one from token ids";

std::vector<std::string> numbered(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

std::vector<std::string> names_from_metadata(const std::map<std::string, std::string>& metadata,
                                             const std::string& where) {
  auto it = metadata.find("names");
  if (it == metadata.end()) return {};
  try {
    return nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  } catch (const std::exception&) {
    throw DataError(where + "the metadata \"names\" must be a JSON list of strings, got " + it->second);
  }
}

}  // namespace

LabelFile::LabelFile(const std::filesystem::path& file, int64_t rows) {
  const std::string where = "data.labels = \"" + file.string() + "\": ";
  const auto ext = file.extension().string();
  if (!std::filesystem::exists(file)) {
    throw DataError(where + "no such file\nHINT: write first-letter labels from token ids with `sweep data labels "
                            "first-letter` (README: Labels), or give the synthetic data data.labels = \"parents\"");
  }
  int64_t labelled_rows = 0;
  if (ext == ".npy") {
    try {
      classes_ = read_int_vector_npy(file, "classes, one per row");
    } catch (const DataError& e) {
      throw DataError(where + e.what() + "\n" + kLayouts);
    }
    labelled_rows = classes_.size(0);
  } else if (ext == ".safetensors") {
    std::map<std::string, torch::Tensor> tensors;
    try {
      tensors = read_safetensors(file);
    } catch (const std::exception& e) {
      throw DataError(where + e.what());
    }
    names_ = names_from_metadata(read_safetensors_header(file).metadata, where);
    auto is_int_vector = [&](const char* name) {
      auto it = tensors.find(name);
      return it != tensors.end() && it->second.dim() == 1 && !it->second.is_floating_point() &&
             it->second.scalar_type() != torch::kBool;
    };
    if (is_int_vector("labels")) {
      classes_ = tensors["labels"].to(torch::kLong).contiguous();
      labelled_rows = classes_.size(0);
    } else if (is_int_vector("concepts_indptr") && is_int_vector("concepts_indices")) {
      indptr_ = tensors["concepts_indptr"].to(torch::kLong).contiguous();
      indices_ = tensors["concepts_indices"].to(torch::kLong).contiguous();
      labelled_rows = indptr_.size(0) - 1;
    } else {
      throw DataError(where + "holds no 1-D integer tensor \"labels\" nor \"concepts_indptr\" with \"concepts_indices\"\n" +
                      kLayouts);
    }
  } else {
    throw DataError(where + "must be a .safetensors or .npy file\n" + kLayouts);
  }
  if (labelled_rows != rows) {
    throw DataError(where + "labels for " + std::to_string(labelled_rows) + " rows, but the activation files hold " +
                    std::to_string(rows) + " rows\nHINT: one label per activation row, in the order of data.paths");
  }
  const auto& values = classes_.defined() ? classes_ : indices_;
  const int64_t largest = values.numel() ? values.max().item<int64_t>() : -1;
  const int64_t smallest = values.numel() ? values.min().item<int64_t>() : 0;
  if (names_.empty()) names_ = numbered(largest + 1);
  const int64_t n = static_cast<int64_t>(names_.size());
  if (smallest < (classes_.defined() ? -1 : 0) || largest >= n) {
    throw DataError(where + "holds " + (classes_.defined() ? "class " : "concept index ") +
                    std::to_string(largest >= n ? largest : smallest) + " but names only " + std::to_string(n) +
                    (classes_.defined() ? " classes (0 to " : " concepts (0 to ") + std::to_string(n - 1) +
                    (classes_.defined() ? ", and -1 for a row in none)" : ")"));
  }
  if (indptr_.defined() && (indptr_[0].item<int64_t>() != 0 || indptr_[-1].item<int64_t>() != indices_.size(0) ||
                            (indptr_.diff() < 0).any().item<bool>())) {
    throw DataError(where + "concepts_indptr must start at 0, never fall, and end at the number of concepts_indices (" +
                    std::to_string(indices_.size(0)) + ")");
  }
  if (n == 0) throw DataError(where + "labels no row with any class or concept\n" + kLayouts);
}

LabelRows LabelFile::rows(const std::vector<int64_t>& rows) const {
  const int64_t n = static_cast<int64_t>(rows.size()), concepts = static_cast<int64_t>(names_.size());
  LabelRows out{torch::zeros({n, concepts}, torch::kFloat), torch::zeros({n}, torch::kBool)};
  auto on = out.on.accessor<float, 2>();
  auto labelled = out.labelled.accessor<bool, 1>();
  if (classes_.defined()) {
    const int64_t* classes = classes_.data_ptr<int64_t>();
    for (int64_t r = 0; r < n; ++r) {
      const int64_t c = classes[rows[static_cast<size_t>(r)]];
      labelled[r] = c >= 0;
      if (c >= 0) on[r][c] = 1.0f;
    }
    return out;
  }
  const int64_t* indptr = indptr_.data_ptr<int64_t>();
  const int64_t* indices = indices_.data_ptr<int64_t>();
  for (int64_t r = 0; r < n; ++r) {
    const int64_t row = rows[static_cast<size_t>(r)];
    labelled[r] = true;
    for (int64_t k = indptr[row]; k < indptr[row + 1]; ++k) on[r][indices[k]] = 1.0f;
  }
  return out;
}

ParentConcepts::ParentConcepts(const TrueFeatures& truth) {
  const auto& parents = truth.parents;
  const int64_t n_features = static_cast<int64_t>(parents.size());
  std::vector<bool> has_children(parents.size(), false);
  for (int64_t p : parents) {
    if (p >= 0) has_children[static_cast<size_t>(p)] = true;
  }
  std::vector<int64_t> concept_of(parents.size(), -1);
  for (int64_t f = 0; f < n_features; ++f) {
    if (!has_children[static_cast<size_t>(f)]) continue;
    concept_of[static_cast<size_t>(f)] = static_cast<int64_t>(features_.size());
    features_.push_back(f);
    names_.push_back("feature " + std::to_string(f));
  }
  covers_ = torch::zeros({n_features, static_cast<int64_t>(features_.size())}, torch::kFloat);
  auto covers = covers_.accessor<float, 2>();
  for (int64_t f = 0; f < n_features; ++f) {
    // The feature itself and its ancestors, each once (a malformed cycle stops after n steps).
    int64_t a = f;
    for (int64_t steps = 0; a >= 0 && steps <= n_features; ++steps, a = parents[static_cast<size_t>(a)]) {
      const int64_t c = concept_of[static_cast<size_t>(a)];
      if (c >= 0) covers[f][c] = 1.0f;
    }
  }
}

LabelRows ParentConcepts::rows(const torch::Tensor& feature_acts) const {
  auto on = ((feature_acts > 0).to(torch::kFloat).mm(covers_) > 0).to(torch::kFloat);
  return {on, torch::ones({feature_acts.size(0)}, torch::kBool)};
}

void write_class_labels(const std::filesystem::path& file, const torch::Tensor& classes,
                        const std::vector<std::string>& names) {
  write_safetensors(file, {{"labels", classes.to(torch::kLong)}},
                    {{"format", "sweep labels"}, {"names", nlohmann::json(names).dump()}});
}

std::vector<std::pair<std::string, torch::Tensor>> concept_csr(const torch::Tensor& on) {
  auto active = on > 0;
  auto indptr = torch::cat({torch::zeros({1}, torch::kLong), active.sum(1).cumsum(0)});
  return {{"concepts_indptr", indptr}, {"concepts_indices", active.nonzero().select(1, 1).contiguous()}};
}

}  // namespace sweep::sharding
