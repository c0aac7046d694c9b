// Dataset implementations: synthetic (held-out rows first, then an endless training stream)
// and files or SAELens caches (seeded permutation; its tail held out, the rest reshuffled every
// epoch).
#include "sharding/dataset.h"

#include <limits>

#include <mutex>
#include <optional>

#include "sharding/data_error.h"
#include "sharding/file_source.h"
#include "sharding/ground_truth_file.h"
#include "sharding/saelens_cache.h"

namespace sweep::sharding {

std::pair<int64_t, int64_t> shard_range(int64_t batch_size, int rank, int ranks) {
  int64_t per_rank = batch_size / ranks;
  return {rank * per_rank, (rank + 1) * per_rank};
}

namespace {

// Labels the rows a dataset hands out: from the ground truth (kParentLabels), from a labels file
// (by global row index), or not at all.
class RowLabels {
 public:
  RowLabels(const DataConfig& cfg, const TrueFeatures* truth, int64_t rows) {
    if (cfg.labels.empty()) return;
    if (cfg.labels == kParentLabels) {
      if (!truth) {
        throw DataError("data.labels = \"parents\" labels rows by the ground truth's parent features, and this data "
                        "has no ground truth\nHINT: give data.ground_truth, or a labels file");
      }
      parents_.emplace(*truth);
    } else if (rows < 0) {
      throw DataError("data.labels = \"" + cfg.labels + "\": a labels file labels the rows of activation files; the "
                      "synthetic source labels its rows with data.labels = \"parents\"");
    } else {
      file_.emplace(cfg.labels, rows);
    }
  }

  const std::vector<std::string>& names() const {
    return parents_ ? parents_->names() : file_ ? file_->names() : none_;
  }

  // `indices`: the rows' global indices in the files (unused for labels from ground truth).
  void label(Rows& rows, const std::vector<int64_t>& indices) const {
    if (parents_) rows.labels = parents_->rows(rows.feature_acts);
    if (file_) rows.labels = file_->rows(indices);
  }

 private:
  std::optional<ParentConcepts> parents_;
  std::optional<LabelFile> file_;
  std::vector<std::string> none_;
};

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(const DataConfig& cfg)
      : eval_tokens_(cfg.eval_tokens),
        source_(with_seed(cfg)),
        truth_{source_.directions(), source_.parents()},
        labels_(cfg, &truth_, -1) {}

  int64_t d_in() const override { return source_.d_in(); }
  int64_t eval_size() const override { return eval_tokens_; }
  int64_t train_size() const override { return std::numeric_limits<int64_t>::max(); }
  const TrueFeatures* true_features() const override { return &truth_; }
  const std::vector<std::string>& concept_names() const override { return labels_.names(); }

  Rows train_shard(int64_t step, int64_t batch_size, int rank, int ranks) const override {
    auto [begin, end] = shard_range(batch_size, rank, ranks);
    return to_rows(source_.rows(eval_tokens_ + step * batch_size + begin, end - begin));
  }
  Rows eval_rows(int64_t first, int64_t count) const override { return labelled(source_.rows(first, count)); }
  Rows train_rows(int64_t first, int64_t count) const override {
    return labelled(source_.rows(eval_tokens_ + first, count));
  }

 private:
  static SyntheticConfig with_seed(const DataConfig& cfg) {
    auto s = cfg.synthetic;
    s.seed = cfg.seed;
    return s;
  }
  static Rows to_rows(SyntheticRows r) { return {std::move(r.activations), std::move(r.feature_acts), {}}; }
  Rows labelled(SyntheticRows r) const {
    auto rows = to_rows(std::move(r));
    labels_.label(rows, {});
    return rows;
  }

  int64_t eval_tokens_;
  SyntheticSource source_;
  TrueFeatures truth_;
  RowLabels labels_;
};

// A SAELens cache's rows as a file source, and what it says of their origin.
std::pair<FileActivationSource, std::optional<CacheOrigin>> open_rows(const DataConfig& cfg) {
  if (cfg.source != DataConfig::Source::Saelens) return {FileActivationSource(cfg.paths, cfg.tensor), std::nullopt};
  SaelensCache cache = open_saelens_cache(cfg.path, cfg.column);
  CacheOrigin origin{cache.column, cache.context_size};
  return {FileActivationSource(std::move(cache.runs), std::move(cache.files)), origin};
}

class FileDataset : public Dataset {
 public:
  FileDataset(const DataConfig& cfg, std::pair<FileActivationSource, std::optional<CacheOrigin>> opened)
      : source_(std::move(opened.first)), origin_(std::move(opened.second)), seed_(cfg.seed) {
    int64_t n = source_.num_rows();
    if (cfg.eval_tokens >= n) {
      const bool cache = cfg.source == DataConfig::Source::Saelens;
      throw DataError("data.eval_tokens = " + std::to_string(cfg.eval_tokens) + " but " +
                      (cache ? "the SAELens cache " + cfg.path + " holds" : std::string("the activation files hold")) +
                      " only " + std::to_string(n) + " rows\nHINT: lower data.eval_tokens or add more " +
                      (cache ? "sequences to the cache" : "shards to data.paths"));
    }
    auto order = permutation(n, seed_);
    train_rows_ = order.narrow(0, 0, n - cfg.eval_tokens).contiguous();
    eval_rows_ = order.narrow(0, n - cfg.eval_tokens, cfg.eval_tokens);
    if (!cfg.ground_truth.empty()) truth_.emplace(cfg.ground_truth, n, source_.d_in());
    labels_.emplace(cfg, true_features(), n);
  }

  const TrueFeatures* true_features() const override { return truth_ ? &truth_->features() : nullptr; }
  const std::vector<std::string>& concept_names() const override { return labels_->names(); }

  int64_t d_in() const override { return source_.d_in(); }
  std::optional<CacheOrigin> cache_origin() const override { return origin_; }
  int64_t eval_size() const override { return eval_rows_.size(0); }
  int64_t train_size() const override { return train_rows_.size(0); }

  Rows train_shard(int64_t step, int64_t batch_size, int rank, int ranks) const override {
    auto [begin, end] = shard_range(batch_size, rank, ranks);
    int64_t n_train = train_rows_.size(0);
    std::vector<int64_t> indices;
    indices.reserve(end - begin);
    const int64_t* train = train_rows_.data_ptr<int64_t>();
    for (int64_t pos = step * batch_size + begin; pos < step * batch_size + end; ++pos) {
      const int64_t* order = epoch_order(pos / n_train).data_ptr<int64_t>();
      indices.push_back(train[order[pos % n_train]]);
    }
    return {source_.rows(indices), {}, {}};
  }

  Rows eval_rows(int64_t first, int64_t count) const override { return rows_at(eval_rows_.narrow(0, first, count)); }
  Rows train_rows(int64_t first, int64_t count) const override { return rows_at(train_rows_.narrow(0, first, count)); }

 private:
  // The rows at these global indices, with their ground truth and labels where the data has them.
  Rows rows_at(const torch::Tensor& global) const {
    auto slice = global.contiguous();
    std::vector<int64_t> indices(slice.data_ptr<int64_t>(), slice.data_ptr<int64_t>() + slice.numel());
    Rows rows{source_.rows(indices), truth_ ? truth_->feature_acts(indices) : torch::Tensor(), {}};
    labels_->label(rows, indices);
    return rows;
  }

  static torch::Tensor permutation(int64_t n, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return torch::randperm(n, gen, torch::kLong);
  }
  // The training order of one epoch, cached (a batch touches at most two epochs at a time).
  const torch::Tensor& epoch_order(int64_t epoch) const {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cached_epoch_ != epoch) {
      cached_order_ = permutation(train_rows_.size(0), seed_ + 1000003ULL * static_cast<uint64_t>(epoch + 1));
      cached_epoch_ = epoch;
    }
    return cached_order_;
  }

  FileActivationSource source_;
  std::optional<CacheOrigin> origin_;
  std::optional<GroundTruthFile> truth_;
  std::optional<RowLabels> labels_;
  uint64_t seed_;
  torch::Tensor train_rows_, eval_rows_;
  mutable std::mutex cache_mutex_;
  mutable int64_t cached_epoch_ = -1;
  mutable torch::Tensor cached_order_;
};

}  // namespace

std::unique_ptr<Dataset> open_dataset(const DataConfig& cfg) {
  if (cfg.source == DataConfig::Source::Synthetic) return std::make_unique<SyntheticDataset>(cfg);
  return std::make_unique<FileDataset>(cfg, open_rows(cfg));
}

std::vector<std::filesystem::path> source_files(const DataConfig& cfg) {
  switch (cfg.source) {
    case DataConfig::Source::Files:
      return expand_globs(cfg.paths);
    case DataConfig::Source::Saelens:
      return saelens_cache_files(cfg.path);
    case DataConfig::Source::Synthetic:
      break;
  }
  return {};
}

std::string source_description(const DataConfig& cfg) {
  switch (cfg.source) {
    case DataConfig::Source::Files: {
      std::string globs;
      for (const auto& g : cfg.paths) globs += (globs.empty() ? "" : ", ") + g;
      return "the activation files " + globs;
    }
    case DataConfig::Source::Saelens:
      return "the SAELens cache " + cfg.path;
    case DataConfig::Source::Synthetic:
      break;
  }
  return "the synthetic data";
}

}  // namespace sweep::sharding
