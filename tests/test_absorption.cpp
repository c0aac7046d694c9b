// The absorption penalty against a brute-force double loop (lift and conditional), its
// gradient against finite differences, and the sharded counts-then-EMA path against one process.
#include <gtest/gtest.h>

#include "sae/absorption.h"
#include "sae/absorption_coverage.h"
#include "sae/pair_tracker.h"

using namespace sweep::sae;

namespace {

// Six latents: 0~1 and 2~3 have nearly parallel decoders, 4 and 5 are generic; 5 is inactive.
struct Fixture {
  torch::Tensor W_dec;
  AbsorptionStats stats;
};

Fixture make_fixture() {
  torch::manual_seed(3);
  Fixture fx;
  auto base = torch::randn({6, 5}, torch::kDouble);
  base[1] = base[0] + 0.2 * torch::randn({5}, torch::kDouble);
  base[3] = base[2] + 0.3 * torch::randn({5}, torch::kDouble);
  fx.W_dec = base * torch::tensor({1.0, 2.0, 0.5, 1.5, 1.0, 1.0}, torch::kDouble).unsqueeze(1);
  fx.stats.P = torch::tensor({0.05, 0.04, 0.2, 0.3, 0.1, 0.0005}, torch::kDouble);
  // Q_ij <= min(P_i, P_j); large co-firing for the parallel pairs.
  auto Q = torch::outer(fx.stats.P, fx.stats.P);
  Q[0][1] = Q[1][0] = 0.03;
  Q[2][3] = Q[3][2] = 0.15;
  Q[4][5] = Q[5][4] = 0.0004;
  for (int i = 0; i < 6; ++i) Q[i][i] = fx.stats.P[i];
  fx.stats.Q = Q;
  return fx;
}

struct Brute {
  double loss = 0;
  int64_t pairs = 0;
};

Brute brute_force(const torch::Tensor& W, const AbsorptionStats& s, const AbsorptionConfig& cfg) {
  Brute out;
  int64_t n = W.size(0);
  auto P = s.P.accessor<double, 1>();
  auto Q = s.Q.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i == j || P[i] <= cfg.activation_threshold || P[j] <= cfg.activation_threshold) continue;
      double cos = (W[i] * W[j]).sum().item<double>() / (W[i].norm().item<double>() * W[j].norm().item<double>());
      double ratio = cfg.ratio == RatioKind::Lift ? Q[i][j] / (P[i] * P[j]) : Q[i][j] / P[j];
      if (cos > cfg.dot_threshold && ratio > cfg.ratio_threshold) {
        out.loss += (ratio - cfg.ratio_threshold) * cos;
        ++out.pairs;
      }
    }
  }
  return out;
}

AbsorptionConfig config(RatioKind kind, double rho) {
  AbsorptionConfig cfg;
  cfg.enabled = true;
  cfg.ratio = kind;
  cfg.ratio_threshold = rho;
  cfg.dot_threshold = 0.8;
  cfg.activation_threshold = 0.001;
  return cfg;
}

// A batch's firing counts as the dense tracker gathers them: sum_b a_bi and sum_b a_bi a_bj.
std::pair<torch::Tensor, torch::Tensor> firing_counts(const torch::Tensor& f) {
  auto active = (f > 0).to(torch::kFloat);
  auto cfg = config(RatioKind::Lift, 1.0);
  cfg.pairs = PairTracking::Dense;
  PairTracker tracker(cfg, f.size(1), torch::kFloat);
  return {active.sum(0), tracker.count_co_firing(active)};
}

void expect_matches_brute_force(RatioKind kind, std::initializer_list<double> thresholds) {
  auto fx = make_fixture();
  for (double rho : thresholds) {
    auto cfg = config(kind, rho);
    auto got = absorption_penalty(fx.W_dec, fx.stats, cfg);
    auto want = brute_force(fx.W_dec, fx.stats, cfg);
    EXPECT_EQ(got.flagged_pairs(), want.pairs) << "rho " << rho;
    EXPECT_NEAR(got.loss.item<double>(), want.loss, 1e-9) << "rho " << rho;
  }
}

}  // namespace

TEST(AbsorptionPenalty, MatchesBruteForceForLift) {
  expect_matches_brute_force(RatioKind::Lift, {0.5, 2.0, 5.0, 14.0, 100.0});
  // The fixture must exercise both outcomes: pairs flagged at a low threshold, none at a high one.
  auto fx = make_fixture();
  EXPECT_GT(absorption_penalty(fx.W_dec, fx.stats, config(RatioKind::Lift, 2.0)).flagged_pairs(), 0);
  EXPECT_EQ(absorption_penalty(fx.W_dec, fx.stats, config(RatioKind::Lift, 100.0)).flagged_pairs(), 0);
}

TEST(AbsorptionPenalty, MatchesBruteForceForConditional) {
  expect_matches_brute_force(RatioKind::Conditional, {0.1, 0.4, 0.6, 0.9});
  auto fx = make_fixture();
  EXPECT_GT(absorption_penalty(fx.W_dec, fx.stats, config(RatioKind::Conditional, 0.4)).flagged_pairs(), 0);
}

TEST(AbsorptionPenalty, InactiveLatentsAreNeverFlagged) {
  auto fx = make_fixture();
  auto cfg = config(RatioKind::Lift, 0.5);
  {
    torch::NoGradGuard no_grad;
    fx.W_dec[5].copy_(fx.W_dec[4]);  // parallel to 4 and co-firing, but P_5 is below the threshold
  }
  auto ratios = ratio_matrix(fx.stats, cfg.ratio);
  auto mask = flagged_mask(decoder_cosines(fx.W_dec), ratios, fx.stats.P, cfg);
  EXPECT_FALSE(mask[4][5].item<bool>());
  EXPECT_FALSE(mask[5][4].item<bool>());
}

TEST(AbsorptionPenalty, GradientMatchesFiniteDifferences) {
  for (auto kind : {RatioKind::Lift, RatioKind::Conditional}) {
    auto fx = make_fixture();
    auto cfg = config(kind, kind == RatioKind::Lift ? 2.0 : 0.4);
    auto W = fx.W_dec.clone().requires_grad_(true);
    auto penalty = absorption_penalty(W, fx.stats, cfg);
    ASSERT_GT(penalty.flagged_pairs(), 0);
    penalty.loss.backward();
    auto grad = W.grad();
    const double eps = 1e-6;
    auto flat = fx.W_dec.flatten();
    for (int64_t k = 0; k < flat.numel(); ++k) {
      auto plus = fx.W_dec.clone(), minus = fx.W_dec.clone();
      plus.view(-1)[k] += eps;
      minus.view(-1)[k] -= eps;
      double numeric = (absorption_penalty(plus, fx.stats, cfg).loss.item<double>() -
                        absorption_penalty(minus, fx.stats, cfg).loss.item<double>()) / (2 * eps);
      EXPECT_NEAR(grad.view(-1)[k].item<double>(), numeric, 1e-5) << "entry " << k;
    }
    // Rows of latents in no flagged pair get no gradient.
    EXPECT_EQ(grad[4].abs().sum().item<double>(), 0.0);
  }
}

TEST(FiringStats, CountsOfShardsGiveTheSameEmaAsTheWholeBatch) {
  torch::manual_seed(5);
  const int64_t B = 64, d_sae = 12;
  AbsorptionStats whole(d_sae, 0.9, torch::kFloat), sharded(d_sae, 0.9, torch::kFloat);
  auto P = torch::zeros({d_sae}, torch::kDouble), Q = torch::zeros({d_sae, d_sae}, torch::kDouble);
  for (int step = 0; step < 5; ++step) {
    auto f = torch::relu(torch::randn({B, d_sae}) - 0.8);
    auto whole_counts = firing_counts(f);
    whole.update(whole_counts.first, whole_counts.second, B);
    // Four shards: counts summed (what an all-reduce does), then one EMA update.
    auto summed = firing_counts(f.narrow(0, 0, B / 4));
    for (int r = 1; r < 4; ++r) {
      auto shard = firing_counts(f.narrow(0, r * B / 4, B / 4));
      summed.first += shard.first;
      summed.second += shard.second;
    }
    sharded.update(summed.first, summed.second, B);
    // The formula, directly: p = mean_b a, q = mean_b a a^T.
    auto a = (f > 0).to(torch::kDouble);
    P = 0.9 * P + 0.1 * a.mean(0);
    Q = 0.9 * Q + 0.1 * a.t().mm(a) / B;
  }
  EXPECT_TRUE(torch::equal(whole.P, sharded.P));
  EXPECT_TRUE(torch::equal(whole.Q, sharded.Q));
  EXPECT_TRUE(torch::allclose(whole.P.to(torch::kDouble), P, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(whole.Q.to(torch::kDouble), Q, 1e-6, 1e-7));
  EXPECT_GT(P.sum().item<double>(), 0.0);
}

TEST(FiringStats, ConditionalRatioNeverExceedsOneAndLiftIsBoundedByOneOverP) {
  torch::manual_seed(9);
  AbsorptionStats stats(10, 0.95, torch::kFloat);
  for (int step = 0; step < 30; ++step) {
    auto counts = firing_counts(torch::relu(torch::randn({128, 10}) - 1.0));
    stats.update(counts.first, counts.second, 128);
  }
  auto conditional = ratio_matrix(stats, RatioKind::Conditional);
  EXPECT_LE(conditional.max().item<double>(), 1.0 + 1e-5);
  auto lift = ratio_matrix(stats, RatioKind::Lift);
  auto bound = 1.0 / torch::max(stats.P.unsqueeze(0), stats.P.unsqueeze(1));
  EXPECT_TRUE((lift <= bound * (1 + 1e-4)).all().item<bool>());
}

// Coverage: matched pairs first with their cosine and held-out ratio, the top pairs after them
// without repeats, and the flagged region as the penalty defines it.
TEST(AbsorptionCoverage, MeasuresMatchedAndTopPairsAgainstTauAndRho) {
  // Latents 0 and 1 nearly parallel (cos 0.96), 2 orthogonal to both, 3 at 0.6 to 0.
  auto W_dec = torch::tensor({{1.0, 0.0, 0.0}, {0.96, 0.28, 0.0}, {0.0, 0.0, 1.0}, {0.6, -0.8, 0.0}}, torch::kFloat);
  AbsorptionCoverage coverage(W_dec, {{0, 1}, {0, 3}}, 3);
  // 10 rows: latent 0 fires on rows 0-4, latent 1 on rows 0-1, latent 3 on rows 5-9, latent 2 never.
  auto f = torch::zeros({10, 4});
  f.narrow(0, 0, 5).select(1, 0).fill_(1.0);
  f.narrow(0, 0, 2).select(1, 1).fill_(1.0);
  f.narrow(0, 5, 5).select(1, 3).fill_(1.0);
  coverage.add(f.narrow(0, 0, 4));
  coverage.add(f.narrow(0, 4, 6));  // two batches sum like one
  AbsorptionConfig cfg;
  cfg.dot_threshold = 0.8;
  cfg.ratio_threshold = 1.5;
  auto pairs = coverage.result(cfg);
  ASSERT_EQ(pairs.size(), 3u) << "(0,1) and (0,3) matched; of the top 3, (1,3) is new";
  EXPECT_TRUE(pairs[0].matched && pairs[1].matched && !pairs[2].matched);
  EXPECT_NEAR(pairs[0].cosine, 0.96, 1e-6);
  // Lift of (0, 1): q / (p0 p1) = 0.2 / (0.5 * 0.2) = 2.
  EXPECT_NEAR(pairs[0].ratio, 2.0, 1e-9);
  EXPECT_TRUE(pairs[0].active && pairs[0].in_region);
  EXPECT_NEAR(pairs[1].ratio, 0.0, 1e-12) << "0 and 3 never fire together";
  EXPECT_FALSE(pairs[1].in_region);
  EXPECT_EQ(pairs[2].i, 1);
  EXPECT_EQ(pairs[2].j, 3);
  cfg.ratio = RatioKind::Conditional;  // max(P(0|1), P(1|0)) = q / min(p0, p1) = 1
  EXPECT_NEAR(coverage.result(cfg)[0].ratio, 1.0, 1e-9);
  EXPECT_FALSE(coverage.result(cfg)[0].in_region) << "1 is not above rho 1.5";
}
