// The synthetic source: firing rates, hierarchy (no child without its parent, exclusive
// siblings), determinism by row index, directions, and the per-rank training shards.
#include <gtest/gtest.h>

#include <cmath>

#include "sharding/dataset.h"
#include "sharding/synthetic.h"

using namespace sweep::sharding;

namespace {
SyntheticConfig small_config() {
  SyntheticConfig cfg;
  cfg.d_in = 32;
  cfg.n_roots = 6;
  cfg.branching = 2;
  cfg.depth = 3;
  cfg.child_cosine = 0.4;
  cfg.seed = 11;
  return cfg;
}
}  // namespace

TEST(Synthetic, ForestShapeAndDirections) {
  SyntheticSource source(small_config());
  EXPECT_EQ(source.n_features(), 6 + 12 + 24);
  EXPECT_TRUE(torch::allclose(source.directions().norm(2, 1), torch::ones({42}), 1e-5, 1e-5));
  for (int64_t c = 0; c < source.n_features(); ++c) {
    int64_t p = source.parents()[c];
    if (p < 0) continue;
    EXPECT_LT(p, c);  // parents come first
    double cos = (source.directions()[c] * source.directions()[p]).sum().item<double>();
    EXPECT_NEAR(cos, 0.4, 1e-5);
  }
}

TEST(Synthetic, FiringRatesMatchTheConfiguredProbabilities) {
  SyntheticSource source(small_config());
  const int64_t n = 200000;
  auto rates = (source.rows(0, n).feature_acts > 0).to(torch::kDouble).mean(0);
  auto expected = source.firing_probability();
  for (int64_t i = 0; i < source.n_features(); ++i) {
    double p = expected[i];
    double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(rates[i].item<double>(), p, 5 * sigma + 1e-4) << "feature " << i;
  }
  EXPECT_NEAR(expected[0], 0.25, 1e-12);  // the most frequent root fires at p_max
  EXPECT_NEAR(expected[5], 0.02, 1e-12);  // the rarest at p_min
}

TEST(Synthetic, ChildNeverFiresWithoutItsParentAndSiblingsExclude) {
  SyntheticSource source(small_config());
  auto active = source.rows(0, 50000).feature_acts > 0;
  std::vector<int64_t> child_count(source.n_features(), 0);
  for (int64_t c = 0; c < source.n_features(); ++c) {
    int64_t p = source.parents()[c];
    if (p < 0) continue;
    auto orphan = active.select(1, c).logical_and(active.select(1, p).logical_not());
    EXPECT_EQ(orphan.sum().item<int64_t>(), 0) << "child " << c << " fired without parent " << p;
  }
  // Exclusive children: at most one child of any parent per row.
  auto children_active = torch::zeros({active.size(0), source.n_features()}, torch::kLong);
  for (int64_t c = 0; c < source.n_features(); ++c) {
    int64_t p = source.parents()[c];
    if (p >= 0) children_active.select(1, p).add_(active.select(1, c).to(torch::kLong));
  }
  EXPECT_LE(children_active.max().item<int64_t>(), 1);
}

TEST(Synthetic, RowsAreAFunctionOfTheirIndex) {
  auto cfg = small_config();
  cfg.noise_std = 0.01;
  SyntheticSource a(cfg), b(cfg);
  auto whole = a.rows(0, 300);
  auto slice = b.rows(120, 50);
  EXPECT_TRUE(torch::equal(whole.activations.narrow(0, 120, 50), slice.activations));
  EXPECT_TRUE(torch::equal(whole.feature_acts.narrow(0, 120, 50), slice.feature_acts));
  cfg.seed = 12;
  EXPECT_FALSE(torch::equal(SyntheticSource(cfg).rows(0, 300).activations, whole.activations));
}

TEST(Synthetic, ActivationsAreTheSumOfActiveDirectionsWithoutNoise) {
  SyntheticSource source(small_config());
  auto rows = source.rows(0, 1000);
  EXPECT_TRUE(torch::allclose(rows.activations, rows.feature_acts.mm(source.directions()), 1e-5, 1e-6));
  EXPECT_GE(rows.feature_acts.min().item<float>(), 0.0f);
}

TEST(SyntheticDataset, ShardsOfRanksTileTheGlobalBatchAndSkipHeldOutRows) {
  DataConfig cfg;
  cfg.eval_tokens = 100;
  cfg.synthetic = small_config();
  auto data = open_dataset(cfg);
  auto global = data->train_shard(3, 64, 0, 1).activations;
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < 4; ++r) parts.push_back(data->train_shard(3, 64, r, 4).activations);
  EXPECT_TRUE(torch::equal(torch::cat(parts), global));
  // Step 0 of training starts right after the held-out rows.
  EXPECT_TRUE(torch::equal(data->train_shard(0, 10, 0, 1).activations,
                           SyntheticSource([&] {
                             auto s = cfg.synthetic;
                             s.seed = cfg.seed;
                             return s;
                           }()).rows(100, 10).activations));
  EXPECT_TRUE(torch::equal(data->eval_rows(0, 100).activations.narrow(0, 90, 10), data->eval_rows(90, 10).activations));
}
