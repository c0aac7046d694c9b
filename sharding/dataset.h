// A training/held-out view over an activation source. The training shard of a rank is a pure
// function of (global step, rank, ranks): the step is the whole resume cursor.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sharding/labels.h"
#include "sharding/synthetic.h"
#include "sharding/true_features.h"

namespace sweep::sharding {

struct Rows {
  torch::Tensor activations;   // [n, d_in] float32
  torch::Tensor feature_acts;  // [n, n_features] true activations; undefined without ground truth
  LabelRows labels;            // the rows' concepts; undefined without data.labels
};

// Where data comes from, as the launcher resolved it from the sweep file.
struct DataConfig {
  enum class Source { Synthetic, Files, Saelens } source = Source::Synthetic;
  int64_t eval_tokens = 65536;
  uint64_t seed = 0;
  SyntheticConfig synthetic;
  std::vector<std::string> paths;  // globs
  std::string tensor = "activations";
  std::string path;                // saelens: the cache's directory
  std::string column;              // saelens: the activation column; "" for the cache's only Array2D column
  std::string ground_truth;        // files: a ground-truth file (sharding/ground_truth_file.h); "" for none
  std::string labels;              // a labels file (sharding/labels.h), kParentLabels, or "" for none
  // Rows scaled to a mean norm of sqrt(d_in) for training (sharding/normalization.h), or not.
  enum class Normalize { None, ExpectedNorm } normalize = Normalize::None;
  double normalize_factor = 1.0;   // the factor the launcher estimated and stored in plan.json
};

// What a SAELens cache says of where its activations came from: export metadata.
struct CacheOrigin {
  std::string hook_name;  // the activation column, named after the hook
  int64_t context_size = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t d_in() const = 0;
  // Rows of the global batch of `step` that belong to `rank` of `ranks` (contiguous slice).
  virtual Rows train_shard(int64_t step, int64_t batch_size, int rank, int ranks) const = 0;
  // Held-out rows [first, first + count).
  virtual Rows eval_rows(int64_t first, int64_t count) const = 0;
  virtual int64_t eval_size() const = 0;
  // Rows the training stream draws from (the synthetic stream never repeats: INT64_MAX).
  virtual int64_t train_size() const = 0;
  // The true features, where the data has ground truth (then eval_rows fill feature_acts).
  virtual const TrueFeatures* true_features() const { return nullptr; }
  // The concepts of data.labels (then every Rows carries labels); empty without labels.
  virtual const std::vector<std::string>& concept_names() const = 0;
  // Training rows [first, first + count) in one fixed order (not the training stream's), with
  // their labels: what the probes of the probe-based absorption metric are trained on.
  virtual Rows train_rows(int64_t first, int64_t count) const = 0;
  // The hook and context size of a SAELens cache; nothing for other sources.
  virtual std::optional<CacheOrigin> cache_origin() const { return std::nullopt; }
};

// Opens (and, for files and caches, validates every shard of) the configured source.
std::unique_ptr<Dataset> open_dataset(const DataConfig& cfg);

// The files a file or cache source reads (for fingerprints); none for the synthetic source.
std::vector<std::filesystem::path> source_files(const DataConfig& cfg);

// Where the source's rows come from, for messages and metadata: the globs, the cache's directory,
// or "synthetic".
std::string source_description(const DataConfig& cfg);

// The slice [begin, end) of a batch of `batch_size` rows that rank `rank` of `ranks` owns.
std::pair<int64_t, int64_t> shard_range(int64_t batch_size, int rank, int ranks);

}  // namespace sweep::sharding
