// The synthetic source: firing rates, hierarchy (no child without its parent, exclusive
// siblings), correlated roots, determinism by row index, directions, the default data's
// superposition and density, and the per-rank training shards.
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
  cfg.p_max = 0.25;
  cfg.child_cosine = 0.4;
  cfg.noise_std = 0.0;
  cfg.seed = 11;
  return cfg;
}

// Mean |phi coefficient| of the roots' firing indicators over every pair of roots.
double mean_root_correlation(const SyntheticSource& source, const torch::Tensor& active) {
  std::vector<int64_t> roots;
  for (int64_t i = 0; i < source.n_features(); ++i) {
    if (source.parents()[i] < 0) roots.push_back(i);
  }
  auto a = active.index_select(1, torch::tensor(roots)).to(torch::kDouble);
  auto centred = a - a.mean(0);
  auto cov = centred.t().mm(centred) / static_cast<double>(a.size(0));
  auto sd = cov.diagonal().sqrt();
  auto corr = cov / sd.unsqueeze(0) / sd.unsqueeze(1);
  const auto n = static_cast<double>(roots.size());
  return (corr.abs().sum().item<double>() - n) / (n * (n - 1));
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

TEST(Synthetic, CorrelatedRootsKeepTheirFiringRates) {
  auto cfg = small_config();
  cfg.n_roots = 12;
  const int64_t n = 100000;
  SyntheticSource independent(cfg);
  const double baseline = mean_root_correlation(independent, independent.rows(0, n).feature_acts > 0);
  cfg.correlation_rank = 2;
  cfg.correlation_strength = 0.8;
  SyntheticSource correlated(cfg);
  auto active = correlated.rows(0, n).feature_acts > 0;
  auto rates = active.to(torch::kDouble).mean(0);
  auto expected = correlated.firing_probability();
  for (int64_t i = 0; i < correlated.n_features(); ++i) {
    double sigma = std::sqrt(expected[i] * (1 - expected[i]) / n);
    // Correlated rows are fewer independent samples: a wider band than the independent test's.
    EXPECT_NEAR(rates[i].item<double>(), expected[i], 8 * sigma + 1e-4) << "feature " << i;
  }
  const double with_factors = mean_root_correlation(correlated, active);
  EXPECT_LT(baseline, 0.01) << "independent roots";
  EXPECT_GT(with_factors, 10 * baseline) << "roots loading on shared factors fire together (or apart)";
}

TEST(Synthetic, TheDefaultDataHasSuperpositionAndAlmostNoZeroRows) {
  SyntheticSource source{SyntheticConfig{}};
  EXPECT_GE(source.n_features(), 4 * source.d_in()) << "several times more features than dimensions";
  auto rows = source.rows(0, 20000);
  const double zero_rows = (rows.activations != 0).any(1).logical_not().to(torch::kDouble).mean().item<double>();
  const double featureless = (rows.feature_acts > 0).any(1).logical_not().to(torch::kDouble).mean().item<double>();
  EXPECT_LT(zero_rows, 0.01);
  EXPECT_LT(featureless, 0.05) << "most rows hold a feature, not noise alone";
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
