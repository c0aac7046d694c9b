// The expected-norm factor and a dataset view that applies it.
#include "sharding/normalization.h"

#include <algorithm>
#include <cmath>

#include "sharding/data_error.h"

namespace sweep::sharding {
namespace {

class ScaledView final : public Dataset {
 public:
  ScaledView(const Dataset& data, double factor) : data_(data), factor_(factor) {}

  int64_t d_in() const override { return data_.d_in(); }
  Rows train_shard(int64_t step, int64_t batch_size, int rank, int ranks) const override {
    return scaled(data_.train_shard(step, batch_size, rank, ranks));
  }
  Rows eval_rows(int64_t first, int64_t count) const override { return scaled(data_.eval_rows(first, count)); }
  int64_t eval_size() const override { return data_.eval_size(); }
  int64_t train_size() const override { return data_.train_size(); }
  const TrueFeatures* true_features() const override { return data_.true_features(); }
  const std::vector<std::string>& concept_names() const override { return data_.concept_names(); }
  Rows train_rows(int64_t first, int64_t count) const override { return scaled(data_.train_rows(first, count)); }

 private:
  // The true activations scale with the rows, so that x = sum_i a_i g_i still holds.
  Rows scaled(Rows rows) const {
    rows.activations = rows.activations * factor_;
    if (rows.feature_acts.defined()) rows.feature_acts = rows.feature_acts * factor_;
    return rows;
  }

  const Dataset& data_;
  double factor_;
};

}  // namespace

double expected_norm_factor(const Dataset& data) {
  const int64_t count = std::min(data.train_size(), kNormSampleRows);
  const auto rows = data.train_rows(0, count).activations.to(torch::kDouble);
  const double mean_norm = rows.norm(2, 1).mean().item<double>();
  if (!(mean_norm > 0) || !std::isfinite(mean_norm)) {
    throw DataError("data.normalize = \"expected_norm\": the mean norm of the first " + std::to_string(count) +
                    " training rows is " + std::to_string(mean_norm) + ", so no factor can scale them; check the "
                    "activations, or use data.normalize = \"none\"");
  }
  return std::sqrt(static_cast<double>(data.d_in())) / mean_norm;
}

std::unique_ptr<Dataset> scaled_view(const Dataset& data, double factor) {
  return std::make_unique<ScaledView>(data, factor);
}

}  // namespace sweep::sharding
