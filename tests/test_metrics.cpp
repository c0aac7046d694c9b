// Evaluation metrics on cases with known answers: perfect reconstruction, explained variance
// about the mean, sparsity figures, and ground-truth metrics for a true-feature SAE and for a
// hand-made absorbing latent.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "sae/ground_truth.h"
#include "sae/interventions.h"
#include "sae/metrics.h"
#include "sharding/data_error.h"
#include "sharding/dataset.h"
#include "sharding/ground_truth_file.h"
#include "sharding/safetensors.h"
#include "sharding/synthetic.h"

using namespace sweep::sae;

namespace {

// A forward pass holding what the metrics read: the activations and the reconstruction.
Forward metrics_input(const torch::Tensor& f, const torch::Tensor& x_hat) {
  Forward out;
  out.f = f;
  out.x_hat = x_hat;
  return out;
}

}  // namespace

TEST(ReconstructionMetrics, PerfectReconstruction) {
  auto x = torch::randn({50, 4});
  auto fwd = metrics_input(torch::relu(torch::randn({50, 6})), x.clone());
  ReconstructionMetrics m(4, 6);
  m.add(x, fwd);
  auto r = m.result();
  EXPECT_NEAR(r["mse"], 0.0, 1e-12);
  EXPECT_NEAR(r["explained_variance"], 1.0, 1e-9);
  EXPECT_NEAR(r["cossim"], 1.0, 1e-6);
  EXPECT_NEAR(r["l2_ratio"], 1.0, 1e-6);
  EXPECT_EQ(r["eval_tokens"], 50);
}

// All-zero rows (cossim and l2_ratio are undefined there) are left out of those two means, so a
// good reconstruction of the other rows reads as one: l2_ratio near 1, not 1e10.
TEST(ReconstructionMetrics, ZeroRowsAreLeftOutOfCossimAndL2Ratio) {
  torch::manual_seed(2);
  auto x = torch::randn({40, 4});
  x.narrow(0, 0, 15).zero_();
  auto x_hat = x * 0.9 + 1e-6;  // zero rows reconstructed as almost zero
  ReconstructionMetrics m(4, 6);
  m.add(x, metrics_input(torch::relu(torch::randn({40, 6})), x_hat));
  auto r = m.result();
  EXPECT_NEAR(r["l2_ratio"], 0.9, 1e-4);
  EXPECT_NEAR(r["cossim"], 1.0, 1e-4);
  EXPECT_EQ(r["eval_tokens"], 40) << "every row still counts elsewhere";
}

TEST(ReconstructionMetrics, ExplainedVarianceIsAboutTheMeanNotZero) {
  // Data far from the origin; predicting its mean explains nothing (variance about zero would say ~1).
  torch::manual_seed(1);
  auto x = torch::randn({200, 3}) * 0.1 + 10.0;
  auto mean = x.mean(0, true).expand_as(x).clone();
  auto fwd = metrics_input(torch::zeros({200, 2}), mean);
  ReconstructionMetrics m(3, 2);
  m.add(x.narrow(0, 0, 120), metrics_input(fwd.f.narrow(0, 0, 120), mean.narrow(0, 0, 120)));
  m.add(x.narrow(0, 120, 80), metrics_input(fwd.f.narrow(0, 120, 80), mean.narrow(0, 120, 80)));
  EXPECT_NEAR(m.result()["explained_variance"], 0.0, 1e-6);
  double mse = (x.to(torch::kDouble) - mean.to(torch::kDouble)).pow(2).sum().item<double>() / (200 * 3);
  EXPECT_NEAR(m.result()["mse"], mse, 1e-12);
}

TEST(ReconstructionMetrics, SparsityFigures) {
  // 10 tokens, 4 latents: latent 0 fires on every token (dense), 1 on one token, 2 and 3 never.
  auto f = torch::zeros({10, 4});
  f.select(1, 0).fill_(2.0);
  f[3][1] = 1.0;
  auto x = torch::randn({10, 3});
  ReconstructionMetrics m(3, 4);
  m.add(x, metrics_input(f, x));
  auto r = m.result();
  EXPECT_NEAR(r["l0"], 1.1, 1e-12);
  EXPECT_NEAR(r["l1"], 2.1, 1e-12);
  EXPECT_NEAR(r["dead_fraction"], 0.5, 1e-12);
  EXPECT_NEAR(r["dense_fraction"], 0.25, 1e-12);
}

TEST(GroundTruthMetrics, TrueFeatureSaeScoresPerfectly) {
  sweep::sharding::SyntheticConfig cfg;
  cfg.d_in = 1024;  // near-orthogonal directions (crosstalk std ~0.03)
  cfg.child_cosine = 0.0;
  cfg.orthogonalize_steps = 0;
  cfg.noise_std = 0.0;
  sweep::sharding::SyntheticSource source(cfg);
  auto dirs = source.directions();
  // Latents = true directions (shuffled) plus spare ones; the encoder reads each direction out,
  // with a bias that removes the small interference between directions.
  auto perm = torch::randperm(source.n_features());
  auto W_dec = torch::cat({dirs.index_select(0, perm), torch::randn({16, cfg.d_in})});
  auto rows = source.rows(0, 20000);
  auto pre = rows.activations.mm(W_dec.t()) - 0.5;
  pre.narrow(1, source.n_features(), 16).fill_(-1.0);
  GroundTruthMetrics m({dirs, source.parents()}, W_dec);
  m.add(rows.feature_acts, torch::relu(pre));
  auto r = m.result();
  EXPECT_NEAR(r["gt_mcc"], 1.0, 1e-5);
  EXPECT_NEAR(r["gt_mmcs"], 1.0, 1e-5);
  EXPECT_GT(r["gt_f1"], 0.99);
  EXPECT_LT(r["gt_absorption"], 0.01);
  EXPECT_GT(r["gt_absorption_parents"], 0);
}

// An SAE whose latents are exactly the true features (f = the true activations, W_dec = the
// directions): clamping both levels removes all of a target's subtree and leaves the rest whole;
// the base and concept levels remove complementary shares.
TEST(ClampingInterventions, TrueFeatureSaeRemovesEverythingAndKeepsTheRest) {
  sweep::sharding::SyntheticConfig cfg;
  cfg.d_in = 32;
  cfg.n_roots = 6;
  cfg.noise_std = 0.0;
  sweep::sharding::SyntheticSource source(cfg);
  const GroundTruth truth{source.directions(), source.parents()};
  std::vector<int64_t> identity(static_cast<size_t>(source.n_features()));
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int64_t>(i);
  EXPECT_EQ(latents_for_features(truth, identity, source.directions(), 0), identity) << "no levels: the matching";
  ClampingInterventions clamp(truth, identity, source.directions(), 4);
  EXPECT_EQ(clamp.targets(), 4);
  auto rows = source.rows(0, 5000);
  clamp.add(rows.activations, rows.activations, rows.feature_acts, rows.feature_acts);
  auto r = clamp.result();
  EXPECT_EQ(r["clamp_targets"], 4);
  EXPECT_NEAR(r["clamp_coordinated_removal"], 1.0, 1e-5);
  EXPECT_NEAR(r["clamp_coordinated_preservation"], 1.0, 1e-5);
  EXPECT_NEAR(r["clamp_base_removal"] + r["clamp_concept_removal"], 1.0, 1e-5);
  EXPECT_GT(r["clamp_base_removal"], 0.05);
  EXPECT_GT(r["clamp_concept_removal"], 0.05);
  // Clamping nothing of the target removes nothing and damages nothing: a latent that never fires.
  auto silent = torch::cat({rows.feature_acts, torch::zeros({5000, 1})}, 1);
  auto W_dec = torch::cat({source.directions(), torch::randn({1, 32})});
  std::vector<int64_t> to_silent(identity.size(), source.n_features());
  ClampingInterventions nothing(truth, to_silent, W_dec, 4);
  nothing.add(rows.activations, rows.activations, silent, rows.feature_acts);
  EXPECT_NEAR(nothing.result()["clamp_coordinated_removal"], 0.0, 1e-9);
  EXPECT_NEAR(nothing.result()["clamp_coordinated_preservation"], 1.0, 1e-9);
}

// A two-level SAE clamps at its levels: a root's latent is its best-aligned concept latent (the
// first concept_width), any other feature's its best-aligned base latent, whatever the matching.
TEST(ClampingInterventions, TwoLevelSaesUseTheirLevels) {
  auto dirs = torch::eye(4).narrow(0, 0, 3);  // features: root 0 with children 1 and 2
  const GroundTruth truth{dirs, {-1, 0, 0}};
  // Latents 0-1 are the concept level; latent 3 copies the root, latent 2 child 1, latent 4 child 2.
  auto W_dec = torch::stack({dirs[1], dirs[0] * 0.9 + dirs[1] * 0.1, dirs[1], dirs[0], dirs[2]});
  W_dec = W_dec / W_dec.norm(2, 1, true);
  EXPECT_EQ(latents_for_features(truth, {3, 2, 4}, W_dec, 2), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(latents_for_features(truth, {3, 2, 4}, W_dec, 0), (std::vector<int64_t>{3, 2, 4}));
}

TEST(GroundTruthMetrics, AbsorbedParentLatentIsMeasured) {
  // Two features in 2-D: 0 is the parent of 1. Latents are the true directions.
  auto dirs = torch::eye(2);
  GroundTruthMetrics m({dirs, {-1, 0}}, torch::eye(2));
  // 30 tokens with the parent alone (its latent fires), 40 with parent and child (its latent
  // fires on only 10 of them: absorbed 75% of the time).
  auto acts = torch::zeros({70, 2});
  acts.narrow(0, 0, 70).select(1, 0).fill_(1.0);
  acts.narrow(0, 30, 40).select(1, 1).fill_(1.0);
  auto f = acts.clone();
  f.narrow(0, 40, 30).select(1, 0).fill_(0.0);
  m.add(acts, f);
  auto r = m.result();
  EXPECT_NEAR(r["gt_absorption"], 0.75, 1e-12);
  EXPECT_EQ(r["gt_absorption_parents"], 1);
  EXPECT_NEAR(r["gt_mcc"], 1.0, 1e-12);
  // Parent F1: TP 40, FN 30, FP 0 -> 80 / 110; child: perfect.
  EXPECT_NEAR(r["gt_f1"], (80.0 / 110.0 + 1.0) / 2.0, 1e-12);
}

TEST(GroundTruthMetrics, TooFewSamplesGiveNoAbsorptionFigure) {
  GroundTruthMetrics m({torch::eye(2), {-1, 0}}, torch::eye(2));
  auto acts = torch::zeros({10, 2});
  acts.select(1, 0).fill_(1.0);
  m.add(acts, acts);
  EXPECT_TRUE(std::isnan(m.result()["gt_absorption"]));
  EXPECT_EQ(m.result()["gt_absorption_parents"], 0);
}

// Ground truth from a file (data.ground_truth): the held-out rows of a file data set carry the
// same true activations as the synthetic rows they were exported from, so the gt metrics of an
// SAE on them equal those computed from the synthetic source itself.
TEST(GroundTruthFile, FileRowsScoreLikeTheSyntheticRowsTheyCameFrom) {
  namespace fs = std::filesystem;
  const std::string stem = (fs::temp_directory_path() / ("sweep_gt_" + std::to_string(::getpid()))).string();
  const std::string file = stem + ".safetensors", short_file = stem + "_short.safetensors",
                    narrow_file = stem + "_narrow.safetensors";
  sweep::sharding::SyntheticConfig cfg;
  cfg.seed = 3;
  sweep::sharding::SyntheticSource source(cfg);
  const int64_t n = 3000;
  sweep::sharding::write_synthetic_with_ground_truth(file, source, n);

  sweep::sharding::DataConfig data;
  data.source = sweep::sharding::DataConfig::Source::Files;
  data.paths = {file};
  data.ground_truth = file;
  data.eval_tokens = 1000;
  auto dataset = sweep::sharding::open_dataset(data);
  const auto* features = dataset->true_features();
  ASSERT_NE(features, nullptr);
  EXPECT_TRUE(torch::allclose(features->directions, source.directions(), 1e-5, 1e-6));
  EXPECT_EQ(features->parents, source.parents());
  auto rows = dataset->eval_rows(0, 1000);

  // The synthetic row behind each held-out row, found by its activations (all-zero rows, which
  // have no active feature, may stand for one another).
  auto all = source.rows(0, n);
  std::map<std::string, int64_t> row_of;
  for (int64_t r = 0; r < n; ++r) {
    auto row = all.activations[r].contiguous();
    row_of[std::string(static_cast<const char*>(row.data_ptr()), row.nbytes())] = r;
  }
  std::vector<int64_t> origin;
  for (int64_t k = 0; k < 1000; ++k) {
    auto row = rows.activations[k].contiguous();
    auto it = row_of.find(std::string(static_cast<const char*>(row.data_ptr()), row.nbytes()));
    ASSERT_NE(it, row_of.end()) << "held-out row " << k << " is no exported row";
    origin.push_back(it->second);
  }
  auto index = torch::tensor(origin, torch::kLong);
  auto synthetic_acts = all.feature_acts.index_select(0, index);
  ASSERT_TRUE(torch::equal(rows.feature_acts, synthetic_acts));

  torch::manual_seed(5);
  auto W_dec = torch::randn({source.n_features() + 8, source.d_in()});
  auto f = torch::relu(rows.activations.mm(W_dec.t()) - 0.1);
  GroundTruthMetrics from_file({features->directions, features->parents}, W_dec);
  GroundTruthMetrics from_source({source.directions(), source.parents()}, W_dec);
  from_file.add(rows.feature_acts, f);
  from_source.add(synthetic_acts, f);
  auto a = from_file.result(), b = from_source.result();
  ASSERT_TRUE(a.count("gt_mcc"));
  for (const auto& [name, value] : b) {
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(a[name])) << name;
    } else {
      EXPECT_NEAR(a[name], value, 1e-9) << name;
    }
  }

  // A file for other rows or another width is refused, naming the file and the mismatch.
  data.eval_tokens = 500;
  sweep::sharding::write_safetensors(short_file, {{"activations", all.activations.narrow(0, 0, 2000)}});
  data.paths = {short_file};
  try {
    sweep::sharding::open_dataset(data);
    ADD_FAILURE() << "ground truth for 3000 rows accepted for 2000";
  } catch (const sweep::sharding::DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("data.ground_truth = \"" + file + "\""), std::string::npos) << what;
    EXPECT_NE(what.find("feature activations for 3000 rows, but the activation files hold 2000 rows"), std::string::npos)
        << what;
  }
  sweep::sharding::write_safetensors(narrow_file, {{"activations", all.activations.narrow(1, 0, 10).contiguous()}});
  data.paths = {narrow_file};
  try {
    sweep::sharding::open_dataset(data);
    ADD_FAILURE() << "ground truth of another d_in accepted";
  } catch (const sweep::sharding::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("but the activation files have d_in 10"), std::string::npos) << e.what();
  }
  for (const auto& f : {file, short_file, narrow_file}) fs::remove(f);
}
