// Candidate pairs against dense computations: the blocked search, co-firing counts, the weighted
// cosine sum and its gradient; the watch's budget; a tracker whose candidates are every pair equals
// the dense one bit for bit; on a real training run no pair above tau is ever missing and the
// flagged pairs and the penalty agree.
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sae/candidate_pairs.h"
#include "sae/pair_tracker.h"
#include "sae/sparse_code.h"
#include "tests/pair_agreement.h"

using namespace sweep::sae;

namespace {

torch::Tensor random_unit_rows(int64_t n, int64_t d, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return unit_rows(at::randn({n, d}, gen, torch::kFloat));
}

// Ten unit rows in 3 dimensions, rows 0 and 1 nearly parallel.
torch::Tensor rows_with_a_near_parallel_pair() {
  auto W = random_unit_rows(10, 3, 5);
  W[1] = W[0] + 0.1 * W[2];
  return W;
}

// `steps` batches of 64 rows over those ten latents, 0 and 1 always firing together, into each tracker.
void feed_co_firing(const std::vector<PairTracker*>& trackers, int steps, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int step = 0; step < steps; ++step) {
    auto active = (at::rand({64, 10}, gen) > 0.7).to(torch::kFloat);
    active.select(1, 1).copy_(active.select(1, 0));
    for (auto* tracker : trackers) tracker->update(active.sum(0), tracker->count_co_firing(active), 64);
  }
}

std::map<std::string, torch::Tensor> state_of(const PairTracker& tracker) {
  auto named = tracker.tensors();
  return {named.begin(), named.end()};
}

AbsorptionConfig penalty_config(PairTracking pairs) {
  AbsorptionConfig cfg;
  cfg.enabled = true;
  cfg.pairs = pairs;
  cfg.dot_threshold = 0.3;
  cfg.ratio_threshold = 1.2;
  cfg.ema_decay = 0.9;
  return cfg;
}

}  // namespace

TEST(CandidatePairs, BlockedSearchFindsExactlyThePairsAboveTheThreshold) {
  auto unit = random_unit_rows(50, 6, 1);
  auto gram = unit.mm(unit.t());
  for (int64_t block_elements : {int64_t{7 * 50}, int64_t{1} << 24}) {  // 7 rows a block, or one block
    auto found = find_candidates(unit, 0.5, block_elements);
    auto want = torch::nonzero(torch::triu(gram > 0.5, 1));
    ASSERT_GT(want.size(0), 10);
    EXPECT_TRUE(torch::equal(torch::stack({found.i, found.j}, 1), want)) << "block of " << block_elements;
    EXPECT_TRUE(torch::allclose(found.cosine, gram.index({found.i, found.j})));
    // Each row's largest cosine to a row it is not paired with.
    auto outside = gram.masked_fill((gram > 0.5).logical_or(torch::eye(50, torch::kBool)), -2.0).amax(1);
    EXPECT_TRUE(torch::allclose(found.outside_max, outside));
  }
}

TEST(CandidatePairs, TheKthLargestIsExactWhenItsSampleMisleadsToo) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  auto values = torch::randn({200000}, gen);
  auto misleading = values.clone();
  misleading.slice(0, 0, misleading.numel(), 16).add_(100.0);  // the sampled values are the largest: the cut passes too few
  for (const auto& v : {values, misleading}) {
    for (int64_t k : {1, 700, 3000}) {  // below and above the sample's reach
      EXPECT_EQ(kth_largest(v, k), std::get<0>(v.topk(k)).min().item<double>()) << "k " << k;
    }
  }
  EXPECT_EQ(kth_largest(torch::tensor({3.0, 1.0, 2.0}), 3), 1.0);
}

// With every row sampled the estimate is exact: strictly above the cosine lie `pairs` - 1 pairs
// (the pairs-th pair's own cosine is the one returned); from a sample of the rows it is near.
TEST(CandidatePairs, TheCosineAboveAPairCountLeavesThatManyPairsAboveIt) {
  auto unit = random_unit_rows(60, 5, 8);
  auto upper = torch::triu(unit.mm(unit.t()), 1) + torch::tril(torch::full({60, 60}, -3.0), 0);
  auto above = [&](double c) { return (upper > c).sum().item<int64_t>(); };
  EXPECT_EQ(above(cosine_above_pair_count(unit, 100)), 99);
  const int64_t sampled = above(cosine_above_pair_count(unit, 300, 15 * 60));  // 15 of the 60 rows
  EXPECT_GT(sampled, 150);
  EXPECT_LT(sampled, 600);
  EXPECT_EQ(cosine_above_pair_count(unit, 60 * 59 / 2), -std::numeric_limits<double>::infinity());
}

TEST(CandidatePairs, TopCosinePairsAreTheHighestOfTheDenseGram) {
  auto unit = random_unit_rows(40, 5, 4);
  auto gram = torch::triu(unit.mm(unit.t()), 1) + torch::tril(torch::full({40, 40}, -3.0), 0);
  auto want = std::get<0>(gram.flatten().topk(25));
  for (int64_t block_elements : {int64_t{3 * 40}, int64_t{1} << 24}) {  // 3 rows a block, or one block
    auto top = top_cosine_pairs(unit, 25, block_elements);
    ASSERT_EQ(top.cosine.numel(), 25);
    EXPECT_TRUE(torch::allclose(top.cosine, want)) << "block of " << block_elements;
    EXPECT_TRUE((top.i < top.j).all().item<bool>());
    EXPECT_TRUE(torch::allclose(gram.index({top.i, top.j}), top.cosine));
  }
  EXPECT_EQ(top_cosine_pairs(unit.narrow(0, 0, 4), 25).cosine.numel(), 6) << "4 rows have 6 pairs";
}

TEST(CandidatePairs, CoFiringAndCosinesOfTheListedPairsMatchTheDenseMatrices) {
  auto active = (torch::rand({40, 12}, at::make_generator<at::CPUGeneratorImpl>(2)) > 0.6).to(torch::kFloat);
  auto unit = random_unit_rows(12, 5, 3);
  auto i = torch::tensor({0, 0, 3, 7, 10}, torch::kLong), j = torch::tensor({1, 11, 4, 9, 11}, torch::kLong);
  auto counts = active.t().mm(active), gram = unit.mm(unit.t());
  auto packed = packed_firing(active);
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{12, 1}));  // 40 rows in one padded word per latent
  EXPECT_TRUE(torch::equal(pair_co_firing(packed, i, j, 2), counts.index({i, j}).to(torch::kInt)));  // chunks of 2 pairs
  auto many = (torch::rand({200, 12}, at::make_generator<at::CPUGeneratorImpl>(5)) > 0.5);  // 4 words, the last partly
  auto many_counts = many.to(torch::kFloat).t().mm(many.to(torch::kFloat));
  EXPECT_TRUE(torch::equal(pair_co_firing(packed_firing(many), i, j), many_counts.index({i, j}).to(torch::kInt)));
  EXPECT_TRUE(torch::allclose(pair_cosines(unit, i, j, 5 * 2), gram.index({i, j})));
  EXPECT_GT(counts.index({i, j}).sum().item<double>(), 0.0);
}

TEST(CandidatePairs, ASparseCodesBitsAreThoseOfItsDenseFiring) {
  // 130 rows: three words per latent, bit 63 set in the first two, the last word partly used.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto f = torch::relu(torch::randn({130, 40}, gen) - 1.3);
  const int64_t entries = (f > 0).sum().item<int64_t>();
  // Twelve a row, more than some rows' active latents: entries that did not fire. Then the listed
  // entries and padding, which repeats latent 0 of the last row.
  for (const auto& chosen : {largest_entries(f, 12), active_entries(firing(f), entries + 7)}) {
    ASSERT_FALSE(chosen.active.all().item<bool>());
    ASSERT_EQ(chosen.active.sum().item<int64_t>(), entries) << "every active latent is in the code";
    auto bits = packed_code_firing(chosen, chosen.active, 40);
    EXPECT_TRUE(torch::equal(bits, packed_firing(f > 0)));
    EXPECT_TRUE(torch::equal(popcount(bits), (f > 0).sum(0).to(torch::kInt)));
  }
}

TEST(CandidatePairs, PopcountCountsEveryBitOfASignedWord) {
  auto words = torch::tensor({int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min(), int64_t{0x0f0f},
                              int64_t{0x5555555555555555}, int64_t{7}},
                             torch::kLong)
                   .view({3, 2});
  EXPECT_TRUE(torch::equal(popcount(words), torch::tensor({64, 9, 35}, torch::kInt)));
  // Up to 31 words a row sum their bytes first (every bit set: 248 a byte), wider rows their 16-bit
  // lanes; both against a count bit by bit.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  for (int64_t width : {16, 31, 32, 100}) {
    auto random = torch::randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), {4, width}, gen,
                                 torch::kLong);
    auto rows = torch::cat({random, torch::full({1, width}, int64_t{-1}, torch::kLong)});
    auto bit_by_bit = rows.unsqueeze(2).bitwise_right_shift(torch::arange(64, torch::kLong)).bitwise_and(1).sum({1, 2});
    EXPECT_TRUE(torch::equal(popcount(rows), bit_by_bit.to(torch::kInt))) << width << " words a row";
    EXPECT_EQ(popcount(rows)[4].item<int>(), 64 * width);
  }
}

TEST(CandidatePairs, WeightedCosineSumAndItsGradientMatchTheDirectFormula) {
  auto W = (3.0 * random_unit_rows(9, 4, 4)).requires_grad_(true);
  auto i = torch::tensor({0, 2, 2, 5}, torch::kLong), j = torch::tensor({1, 3, 8, 6}, torch::kLong);
  auto w = torch::tensor({0.5f, 0.0f, 2.0f, 1.5f});
  auto sparse = weighted_pair_cosines(W, unit_rows(W.detach()), i, j, w, 2 * 4);  // chunks of 2 pairs
  auto grad_sparse = torch::autograd::grad({sparse}, {W})[0];
  auto unit = W / W.norm(2, 1, true);
  auto direct = (w * (unit.index_select(0, i) * unit.index_select(0, j)).sum(1)).sum();
  auto grad_direct = torch::autograd::grad({direct}, {W})[0];
  EXPECT_NEAR(sparse.item<double>(), direct.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(grad_sparse, grad_direct, 1e-5, 1e-5));
  EXPECT_EQ(grad_sparse[4].abs().sum().item<double>(), 0.0);  // row 4 is in no pair
  EXPECT_GT(grad_sparse[8].abs().sum().item<double>(), 0.0);
  auto none = torch::zeros({0}, torch::kLong);
  EXPECT_EQ(weighted_pair_cosines(W, unit_rows(W.detach()), none, none, torch::zeros({0})).item<double>(), 0.0);
}

TEST(CandidatePairs, OnTheCpuOnlyTheSetPositionsAreVisited) {
  auto mask = torch::tensor({false, true, false, false, true});
  EXPECT_TRUE(torch::equal(positions_to_visit(mask), torch::tensor({1, 4}, torch::kLong)));
  EXPECT_EQ(positions_to_visit(torch::zeros({3}, torch::kBool)).numel(), 0);
}

// With tau - margin below every cosine, every pair is a candidate from the first update on: the
// candidate tracker's penalty, flagged pairs and gradient are then the dense tracker's exactly.
TEST(PairTracker, CandidatesThatAreEveryPairGiveTheDensePenaltyBitForBit) {
  for (auto ratio : {RatioKind::Lift, RatioKind::Conditional}) {
    auto dense_cfg = penalty_config(PairTracking::Dense), candidate_cfg = penalty_config(PairTracking::Candidates);
    dense_cfg.ratio = candidate_cfg.ratio = ratio;
    dense_cfg.ratio_threshold = candidate_cfg.ratio_threshold = ratio == RatioKind::Lift ? 1.2 : 0.5;
    candidate_cfg.candidate_margin = 1.9;
    candidate_cfg.max_candidate_fraction = 1.0;
    PairTracker dense(dense_cfg, 10, torch::kFloat), candidates(candidate_cfg, 10, torch::kFloat);
    auto W = rows_with_a_near_parallel_pair();
    candidates.refresh(W);
    ASSERT_FALSE(candidates.dense());
    ASSERT_EQ(candidates.tracked_pairs(), 45);
    feed_co_firing({&dense, &candidates}, 6, 6);
    auto Wd = W.clone().requires_grad_(true), Wc = W.clone().requires_grad_(true);
    auto want = dense.penalty(Wd), got = candidates.penalty(Wc);
    ASSERT_GT(want.flagged_pairs(), 0);
    EXPECT_EQ(got.flagged_pairs(), want.flagged_pairs());
    EXPECT_TRUE(torch::equal(candidates.flagged_pairs(W), dense.flagged_pairs(W)));
    EXPECT_NEAR(got.loss.item<double>(), want.loss.item<double>(), 1e-5 * std::abs(want.loss.item<double>()));
    want.loss.backward();
    got.loss.backward();
    EXPECT_TRUE(torch::allclose(Wc.grad(), Wd.grad(), 1e-5, 1e-6));
  }
}

TEST(PairTracker, TooManyCandidatesTurnTheTrackerDense) {
  auto cfg = penalty_config(PairTracking::Candidates);
  cfg.candidate_margin = 1.9;  // every pair
  PairTracker tracker(cfg, 8, torch::kFloat);
  auto note = tracker.refresh(random_unit_rows(8, 3, 7));
  EXPECT_TRUE(tracker.dense());
  EXPECT_NE(note.find("absorption.max_candidate_fraction"), std::string::npos) << note;
  EXPECT_EQ(tracker.counts_numel(), 64);
}

// The search goes below tau - candidate_margin towards tau - watch_margin as far as the budget of
// watch_pairs_per_latent x d_sae pairs allows, and never stops above tau - candidate_margin.
TEST(PairTracker, TheWatchWidensTheSearchAsFarAsItsBudgetAllows) {
  auto W = random_unit_rows(40, 5, 9);
  auto upper = torch::triu(W.mm(W.t()), 1) + torch::tril(torch::full({40, 40}, -3.0), 0);
  auto above = [&](double c) { return (upper > c).sum().item<int64_t>(); };
  auto cfg = penalty_config(PairTracking::Candidates);
  cfg.dot_threshold = 0.8;
  cfg.candidate_margin = 0.1;
  cfg.watch_margin = 0.5;
  const int64_t needed = above(0.7), widest = above(0.3);
  ASSERT_LT(needed + 40, widest - 40);  // a budget of one pair per latent lies strictly between
  auto tracked = [&](int64_t per_latent) {
    cfg.watch_pairs_per_latent = per_latent;
    PairTracker tracker(cfg, 40, torch::kFloat);
    EXPECT_EQ(tracker.refresh(W), "");
    return tracker.tracked_pairs();
  };
  EXPECT_EQ(tracked(0), needed);
  EXPECT_EQ(tracked(100), widest);
  const int64_t budget = (needed + widest) / 2 / 40;
  EXPECT_EQ(tracked(budget), budget * 40 - 1);
  cfg.watch_margin = 0.05;  // narrower than candidate_margin: no watch
  EXPECT_EQ(tracked(100), needed);
}

// A pair that stays a candidate across a search keeps its history; one that enters starts from zero.
TEST(PairTracker, ASearchKeepsTheHistoryOfPairsThatStay) {
  auto cfg = penalty_config(PairTracking::Candidates);
  cfg.dot_threshold = 0.9;
  cfg.candidate_margin = 0.1;
  cfg.max_candidate_fraction = 1.0;
  PairTracker tracker(cfg, 3, torch::kFloat);
  auto W = torch::tensor({{1.0f, 0.0f}, {0.9f, 0.1f}, {0.0f, 1.0f}});
  tracker.refresh(W);
  ASSERT_EQ(tracker.tracked_pairs(), 1);  // (0, 1)
  auto active = torch::ones({4, 3});
  tracker.update(active.sum(0), tracker.count_co_firing(active), 4);
  auto W2 = torch::tensor({{1.0f, 0.0f}, {0.9f, 0.1f}, {0.95f, 0.2f}});  // 2 now joins both
  tracker.refresh(W2);
  ASSERT_EQ(tracker.tracked_pairs(), 3);
  auto after = state_of(tracker);
  auto Q = after.at("absorption.pairs.Q"), entry = after.at("absorption.pairs.entry");
  EXPECT_NEAR(Q[0].item<double>(), 0.1, 1e-6);  // (0, 1): one update of 1 - beta = 0.1
  EXPECT_EQ(Q[1].item<double>(), 0.0);          // (0, 2), new
  EXPECT_EQ(entry[0].item<int64_t>(), 0);
  EXPECT_EQ(entry[2].item<int64_t>(), 1);
}

// The cosines at the search rule far pairs out; a checkpoint written before they were kept restores
// with none ruled out, and flags the same pairs.
TEST(PairTracker, ACheckpointWithoutTheSearchCosinesRestoresAndFlagsTheSamePairs) {
  auto cfg = penalty_config(PairTracking::Candidates);
  cfg.ratio_threshold = 1.2;
  cfg.candidate_margin = 1.0;
  cfg.max_candidate_fraction = 1.0;
  PairTracker saved(cfg, 10, torch::kFloat);
  auto W = rows_with_a_near_parallel_pair();
  saved.refresh(W);
  feed_co_firing({&saved}, 4, 8);
  ASSERT_GT(saved.flagged_pairs(W).size(0), 0);
  auto old_format = state_of(saved);
  ASSERT_EQ(old_format.erase("absorption.pairs.cosine"), 1u);
  PairTracker restored(cfg, 10, torch::kFloat);
  restored.restore(old_format, 4);
  EXPECT_TRUE(torch::equal(restored.flagged_pairs(W), saved.flagged_pairs(W)));
  EXPECT_TRUE(torch::isinf(state_of(restored).at("absorption.pairs.cosine")).all().item<bool>());
}

// A relu SAE trained on the synthetic data with the penalty at tau 0.5: the candidates are found
// anew only when the drift bound asks (the interval is out of reach), and after every step every
// pair whose dense cosine exceeds tau is a candidate. Flagged pairs differ from dense only while
// the candidate tracker has followed the pair for fewer than 5 / (1 - beta) updates (README).
TEST(PairTracker, OnATrainingRunNoPairAboveTauIsMissedAndOnlyShortHistoriesDifferFromDense) {
  sweep::worker::JobConfig cfg;
  cfg.sae.d_sae = 128;
  cfg.train.batch_size = 512;
  cfg.train.lr = 3e-3;
  cfg.train.warmup_steps = 20;
  cfg.loss.l1_penalty = 0.15;
  cfg.absorption.enabled = true;
  cfg.absorption.dot_threshold = 0.5;
  cfg.absorption.ratio_threshold = 5.0;
  cfg.absorption.refresh_every = 1000000;
  cfg.absorption.ema_decay = 0.9;  // 50 updates make a long history, well inside the run
  cfg.data.eval_tokens = 0;
  // The earlier default data (64 random directions in d_in 64, no noise), whose latents come close
  // enough for many pairs to pass tau within 400 steps; the spread-out default has almost none.
  cfg.data.synthetic.n_roots = 16;
  cfg.data.synthetic.branching = 3;
  cfg.data.synthetic.p_max = 0.25;
  cfg.data.synthetic.noise_std = 0.0;
  cfg.data.synthetic.orthogonalize_steps = 0;
  auto agreement = sweep::test::lockstep_pair_agreement(cfg, 400);
  EXPECT_EQ(agreement.steps, 400);
  EXPECT_EQ(agreement.missed_steps, 0);
  EXPECT_GT(agreement.refreshes, 0) << "the drift bound never asked for a search: the check is vacuous";
  EXPECT_GT(agreement.dense_flagged, 100);
  EXPECT_GT(agreement.both_flagged, 0);
  EXPECT_EQ(agreement.long_history_disagreements, 0);
  EXPECT_GE(agreement.share_of_either(), 0.99);
  EXPECT_LT(agreement.penalty_difference_share(), 0.01);
  std::printf("candidates: %lld searches, %.0f candidates on average (max %lld) of %d pairs; flagged pair-steps: "
              "dense %lld, candidates %lld, both %lld\n",
              static_cast<long long>(agreement.refreshes), agreement.mean_candidates,
              static_cast<long long>(agreement.max_candidates), 128 * 127 / 2,
              static_cast<long long>(agreement.dense_flagged), static_cast<long long>(agreement.candidate_flagged),
              static_cast<long long>(agreement.both_flagged));
}
