// Loss terms and the three architectures against values computed by hand on tiny tensors,
// plus the JumpReLU straight-through gradients and the decoder unit-norm constraint.
#include <gtest/gtest.h>

#include "sae/batch_context.h"
#include "sae/batch_statistics.h"
#include "sae/jumprelu.h"
#include "sae/losses.h"
#include "sae/saelens_export.h"
#include "sae/sae_model.h"

using namespace sweep::sae;

namespace {

// A 2-in, 3-latent SAE with hand-set weights.
Sae tiny_sae(const std::string& arch, int64_t k = 1) {
  SaeConfig cfg;
  cfg.arch = arch;
  cfg.d_in = 2;
  cfg.d_sae = 3;
  cfg.k = k;
  cfg.k_aux = 1;
  cfg.init_threshold = 0.5;
  cfg.bandwidth = 0.2;
  cfg.target_l0 = 2.0;
  cfg.sparsity_penalty = 1.0;
  Sae sae(cfg, 0);
  torch::NoGradGuard no_grad;
  sae.W_enc.copy_(torch::tensor({{1.0f, 0.0f, 1.0f}, {0.0f, 1.0f, -1.0f}}));
  sae.W_dec.copy_(torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {0.6f, 0.8f}}));
  sae.b_enc.copy_(torch::tensor({0.0f, -0.5f, 0.0f}));
  sae.b_dec.copy_(torch::tensor({0.5f, 0.0f}));
  return sae;
}

torch::Tensor x_batch() { return torch::tensor({{1.5f, 2.0f}, {0.5f, 0.2f}}); }
BatchContext whole_batch() {
  BatchContext b;
  b.global_rows = 2;
  return b;
}

double value(const torch::Tensor& t) { return t.item<double>(); }

Sae batchtopk_sae(int64_t d_in, int64_t d_sae, int64_t k, uint64_t seed, std::vector<int64_t> matryoshka_widths = {}) {
  SaeConfig cfg;
  cfg.arch = matryoshka_widths.empty() ? "batchtopk" : "matryoshka";
  cfg.d_in = d_in;
  cfg.d_sae = d_sae;
  cfg.k = k;
  cfg.matryoshka_widths = std::move(matryoshka_widths);
  return Sae(cfg, seed);
}

// The batch statistics of one shard that is the whole batch (no penalty).
BatchStatistics statistics_of(const Sae& sae, const Forward& out, const torch::Tensor& x) {
  return local_statistics(sae, out, x, Penalties(), whole_batch());
}

}  // namespace

TEST(SaeForward, ReluMatchesHandComputation) {
  auto sae = tiny_sae("relu");
  auto out = sae.forward(x_batch());
  // pre = (x - b_dec) W_enc + b_enc: (1, 2) -> (1, 1.5, -1); (0, 0.2) -> (0, -0.3, -0.2).
  EXPECT_TRUE(torch::allclose(out.pre, torch::tensor({{1.0f, 1.5f, -1.0f}, {0.0f, -0.3f, -0.2f}})));
  EXPECT_TRUE(torch::allclose(out.f, torch::tensor({{1.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})));
  EXPECT_TRUE(torch::allclose(out.x_hat, torch::tensor({{1.5f, 1.5f}, {0.5f, 0.0f}})));
}

TEST(SaeForward, TopKKeepsTheKLargest) {
  auto out = tiny_sae("topk", 1).forward(x_batch());
  EXPECT_TRUE(torch::allclose(out.f, torch::tensor({{0.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})));
  auto out2 = tiny_sae("topk", 2).forward(x_batch());
  EXPECT_TRUE(torch::allclose(out2.f, torch::tensor({{1.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})));
}

TEST(SaeForward, JumpReluZeroesBelowThreshold) {
  auto sae = tiny_sae("jumprelu");  // theta = 0.5
  auto out = sae.forward(torch::tensor({{0.9f, 0.9f}}));
  // pre = (0.4, 0.4, -0.5): all below theta = 0.5.
  EXPECT_TRUE(torch::allclose(out.f, torch::zeros({1, 3})));
  auto out2 = sae.forward(x_batch());
  EXPECT_TRUE(torch::allclose(out2.f, torch::tensor({{1.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})));
}

// BatchTopK: training keeps the k x B largest activations of the whole batch (so rows may keep
// more or fewer than k); inference keeps what exceeds the threshold.
TEST(SaeForward, BatchTopKKeepsTheLargestOfTheBatchAndInfersWithItsThreshold) {
  auto sae = tiny_sae("batchtopk", 1);  // k x B = 2 of the batch's relu'd pre (1, 1.5, 0; 0, 0, 0)
  auto train = sae.forward_train(x_batch());
  EXPECT_TRUE(torch::allclose(train.f, torch::tensor({{1.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})))
      << "both kept activations in row 0, none in row 1";
  torch::NoGradGuard no_grad;
  sae.batch_threshold.fill_(1.2);
  auto infer = sae.forward(x_batch());
  EXPECT_TRUE(torch::allclose(infer.f, torch::tensor({{0.0f, 1.5f, 0.0f}, {0.0f, 0.0f, 0.0f}})));

  // Random shapes: exactly k x B kept in training (no ties), every kept value at least each dropped one.
  Sae wide = batchtopk_sae(8, 40, 3, 7);
  auto x = torch::randn({16, 8});
  auto f = wide.forward_train(x).f;
  EXPECT_EQ((f > 0).sum().item<int64_t>(), 3 * 16);
  auto pre = torch::relu(wide.forward(x).pre);
  EXPECT_GE(f.masked_select(f > 0).min().item<double>(), pre.masked_select(f == 0).max().item<double>());
}

// BatchTopK and Matryoshka are saved as SAELens saves them for inference: a jumprelu with the
// threshold per latent, whose jumprelu forward (relu(pre) where pre > threshold) is the tool's own
// inference; Matryoshka's widths, d_sae last, are in the metadata.
TEST(SaeLensExport, BatchTopKAndMatryoshkaAreSavedAsJumpRelusThatInferAlike) {
  for (std::vector<int64_t> widths : {std::vector<int64_t>{}, std::vector<int64_t>{5, 12}}) {
    Sae sae = batchtopk_sae(6, 20, 4, 3, widths);
    SCOPED_TRACE(sae.config().arch);
    {
      torch::NoGradGuard no_grad;
      sae.batch_threshold.fill_(0.3);
      sae.b_enc.copy_(torch::randn({20}) * 0.2);
    }
    auto exported = export_saelens(sae, torch::full({20}, 0.1), ActivationOrigin{});
    EXPECT_EQ(exported.cfg["architecture"], "jumprelu");
    std::map<std::string, torch::Tensor> w(exported.weights.begin(), exported.weights.end());
    ASSERT_TRUE(w.count("threshold"));
    EXPECT_EQ(w["threshold"].sizes(), torch::IntArrayRef({20}));
    EXPECT_TRUE(torch::allclose(w["threshold"], torch::full({20}, 0.3)));
    auto x = torch::randn({10, 6});
    auto pre = torch::addmm(w["b_enc"], x - w["b_dec"], w["W_enc"]);
    auto f = pre * (pre > w["threshold"]).to(torch::kFloat);  // SAELens's JumpReLU inference
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(f, sae.forward(x).f));
    EXPECT_TRUE(torch::allclose(torch::addmm(w["b_dec"], f, w["W_dec"]), sae.forward(x).x_hat, 1e-5, 1e-6));
    if (widths.empty()) {
      EXPECT_FALSE(exported.cfg["metadata"].contains("matryoshka_widths"));
    } else {
      EXPECT_EQ(exported.cfg["metadata"]["matryoshka_widths"], nlohmann::json::array({5, 12, 20}));
    }
    EXPECT_TRUE(exported.cfg["metadata"]["sae_lens_training_version"].is_null()) << "SAELens did not train it";
  }
}

TEST(JumpRelu, StraightThroughGradients) {
  // bw = 0.2: z = 0.55 lies inside the kernel around theta = 0.5, z = 1.0 and z = 0.3 do not.
  auto z = torch::tensor({{0.55f, 1.0f, 0.3f}}).requires_grad_(true);
  auto theta = torch::full({3}, 0.5f).requires_grad_(true);
  auto y = jumprelu(z, theta, 0.2).sum();
  EXPECT_NEAR(value(y), 1.55, 1e-6);
  y.backward();
  EXPECT_TRUE(torch::allclose(z.grad(), torch::tensor({{1.0f, 1.0f, 0.0f}})));
  EXPECT_TRUE(torch::allclose(theta.grad(), torch::tensor({-2.5f, 0.0f, 0.0f})));  // -(theta / bw)

  auto z2 = torch::tensor({{0.55f, 1.0f, 0.3f}}).requires_grad_(true);
  auto theta2 = torch::full({3}, 0.5f).requires_grad_(true);
  auto l0 = heaviside_step(z2, theta2, 0.2).sum();
  EXPECT_NEAR(value(l0), 2.0, 1e-6);
  l0.backward();
  EXPECT_TRUE(torch::allclose(z2.grad(), torch::zeros({1, 3})));
  EXPECT_TRUE(torch::allclose(theta2.grad(), torch::tensor({-5.0f, 0.0f, 0.0f})));  // -(1 / bw)
}

TEST(Losses, ReconstructionAndL1) {
  auto sae = tiny_sae("relu");
  auto out = sae.forward(x_batch());
  // Residuals (0, 0.5) and (0, 0.2).
  EXPECT_NEAR(value(reconstruction_loss(x_batch(), out.x_hat, ReconLoss::MSE, whole_batch())), (0.25 + 0.04) / 2, 1e-6);
  EXPECT_NEAR(value(reconstruction_loss(x_batch(), out.x_hat, ReconLoss::L2Norm, whole_batch())), (0.5 + 0.2) / 2, 1e-6);
  EXPECT_NEAR(value(l1_loss(out.f, whole_batch())), (2.5 + 0.0) / 2, 1e-6);
}

// Matryoshka's reconstruction term: each prefix [0, w) reconstructs from its own latents of the
// step's batch-wide selection, and the terms add up, the whole dictionary's last.
TEST(Losses, MatryoshkaSumsTheReconstructionOfEveryPrefix) {
  Sae sae = batchtopk_sae(6, 20, 4, 5, {5, 12});
  torch::manual_seed(3);
  auto x = torch::randn({10, 6});
  auto fwd = sae.forward_train(x);
  torch::NoGradGuard no_grad;
  double expected = 0;
  for (int64_t w : {5, 12, 20}) {
    auto x_hat = sae.b_dec + fwd.f.narrow(1, 0, w).mm(sae.W_dec.narrow(0, 0, w));
    expected += (x - x_hat).pow(2).sum(1).mean().item<double>();
  }
  BatchContext ten_rows;
  ten_rows.global_rows = 10;
  const double got = value(matryoshka_reconstruction_loss(sae, fwd, x, ReconLoss::MSE, ten_rows));
  EXPECT_NEAR(got, expected, 1e-5 * expected);
  EXPECT_GT(got, value(reconstruction_loss(x, fwd.x_hat, ReconLoss::MSE, ten_rows)) + 1.0)
      << "the inner prefixes' terms add to the whole dictionary's";
}

TEST(Losses, MatryoshkaWeighsEachPrefixsReconstruction) {
  Sae plain = batchtopk_sae(6, 20, 4, 5, {5, 12});
  auto cfg = plain.config();
  cfg.matryoshka_weights = {0.5, 0.0, 3.0};
  Sae weighted(cfg, 5);
  torch::manual_seed(3);
  auto x = torch::randn({10, 6});
  auto fwd = weighted.forward_train(x);
  torch::NoGradGuard no_grad;
  BatchContext ten_rows;
  ten_rows.global_rows = 10;
  double expected = 0;
  const std::vector<int64_t> widths{5, 12, 20};
  for (size_t m = 0; m < widths.size(); ++m) {
    auto x_hat = weighted.b_dec + fwd.f.narrow(1, 0, widths[m]).mm(weighted.W_dec.narrow(0, 0, widths[m]));
    expected += cfg.matryoshka_weights[m] * value(reconstruction_loss(x, x_hat, ReconLoss::MSE, ten_rows));
  }
  const double got = value(matryoshka_reconstruction_loss(weighted, fwd, x, ReconLoss::MSE, ten_rows));
  EXPECT_NEAR(got, expected, 1e-5 * expected);
  EXPECT_NE(got, value(matryoshka_reconstruction_loss(plain, fwd, x, ReconLoss::MSE, ten_rows)))
      << "the weights change the loss";
}

TEST(Losses, ShardSharesAverageToTheGlobalLoss) {
  auto x = torch::randn({8, 2});
  auto x_hat = torch::randn({8, 2});
  double global = value(reconstruction_loss(x, x_hat, ReconLoss::L2Norm, [] {
    BatchContext b;
    b.global_rows = 8;
    return b;
  }()));
  BatchContext shard;
  shard.global_rows = 8;
  shard.num_shards = 4;
  double mean_of_shares = 0;
  for (int r = 0; r < 4; ++r) {
    mean_of_shares += value(reconstruction_loss(x.narrow(0, 2 * r, 2), x_hat.narrow(0, 2 * r, 2), ReconLoss::L2Norm, shard)) / 4;
  }
  EXPECT_NEAR(mean_of_shares, global, 1e-5);
}

TEST(Losses, JumpReluL0Target) {
  auto sae = tiny_sae("jumprelu");
  auto out = sae.forward(x_batch());
  // L0 = mean(2, 0) = 1, target 2: (1/2 - 1)^2 = 0.25.
  auto share = jumprelu_l0_share(sae, out, whole_batch());
  auto loss = jumprelu_l0_loss(sae.config(), share, statistics_of(sae, out, x_batch()).arch_section()[0], whole_batch());
  EXPECT_NEAR(value(loss), 0.25, 1e-6);
  loss.backward();
  // None of the pre-activations (1, 1.5, -1, 0, -0.3, -0.2) lies within bw/2 = 0.1 of theta = 0.5,
  // so the straight-through gradient is zero here.
  EXPECT_TRUE(torch::allclose(sae.log_threshold.grad(), torch::zeros({3})));
}

TEST(Losses, TopKAuxiliaryLoss) {
  auto sae = tiny_sae("topk", 2);
  auto out = sae.forward(x_batch());
  auto residual = x_batch() - out.x_hat;  // (0, 0.5), (0, 0.2)
  auto dead = torch::tensor({true, false, false});
  // k_aux = 1 dead latent (0): f_aux = (1, 0, 0), (0, 0, 0) -> e_hat = (1, 0), (0, 0).
  // ||e - e_hat||^2 = 1.25 + 0.04 = 1.29; mean(e) = (0, 0.35): sum ||e - mean||^2 = 0.045.
  auto global = statistics_of(sae, out, x_batch());
  auto loss = topk_aux_loss(sae, out, x_batch(), residual, dead, global.arch_section(), whole_batch());
  EXPECT_NEAR(value(loss), 1.29 / 0.045, 1e-3);
  auto none_dead = topk_aux_loss(sae, out, x_batch(), residual, torch::zeros({3}, torch::kBool), global.arch_section(),
                                 whole_batch());
  EXPECT_EQ(value(none_dead), 0.0);
}

// Shards' statistics summed (what the step's all-reduce does) give each shard the global
// denominator: the mean of the shards' losses is the whole batch's loss, with or without dead latents.
TEST(Losses, TopKAuxiliaryLossOfShardsFromSummedStatisticsIsTheWholeBatchLoss) {
  torch::manual_seed(4);
  SaeConfig cfg;
  cfg.arch = "topk";
  cfg.d_in = 6;
  cfg.d_sae = 10;
  cfg.k = 3;
  cfg.k_aux = 2;
  Sae sae(cfg, 1);
  auto x = torch::randn({8, 6});
  for (auto dead : {torch::tensor({1, 0, 0, 1, 0, 0, 0, 1, 0, 0}).to(torch::kBool), torch::zeros({10}, torch::kBool)}) {
    auto whole = sae.forward(x);
    BatchContext all{8, 1};
    double want = value(topk_aux_loss(sae, whole, x, x - whole.x_hat, dead, statistics_of(sae, whole, x).arch_section(), all));
    BatchContext shard{8, 2};
    std::vector<Forward> outs;
    auto summed = statistics_of(sae, sae.forward(x.narrow(0, 0, 4)), x.narrow(0, 0, 4));
    summed.buffer = summed.buffer + statistics_of(sae, sae.forward(x.narrow(0, 4, 4)), x.narrow(0, 4, 4)).buffer;
    double mean_of_shares = 0;
    for (int r = 0; r < 2; ++r) {
      auto part = x.narrow(0, 4 * r, 4);
      auto out = sae.forward(part);
      mean_of_shares += value(topk_aux_loss(sae, out, part, part - out.x_hat, dead, summed.arch_section(), shard)) / 2;
    }
    EXPECT_NEAR(mean_of_shares, want, 1e-4 * std::max(1.0, std::abs(want)));
    if (dead.any().item<bool>()) {
      EXPECT_GT(want, 0.0);
    }
  }
}

TEST(SaeInit, DeterministicUnitDecoderTiedEncoder) {
  SaeConfig cfg;
  cfg.d_in = 8;
  cfg.d_sae = 16;
  Sae a(cfg, 7), b(cfg, 7), c(cfg, 8);
  EXPECT_TRUE(torch::equal(a.W_dec, b.W_dec));
  EXPECT_FALSE(torch::equal(a.W_dec, c.W_dec));
  EXPECT_TRUE(torch::allclose(a.W_dec.norm(2, 1), torch::ones({16}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(a.W_enc, a.W_dec.t()));
}

TEST(DecoderConstraint, ParallelGradientRemovedAndRowsRenormalised) {
  auto sae = tiny_sae("relu");
  auto parallel = sae.W_dec.detach() * 3.0;
  auto orthogonal = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}, {-0.8f, 0.6f}});
  sae.W_dec.mutable_grad() = parallel + orthogonal;
  remove_parallel_decoder_grad(sae);
  EXPECT_TRUE(torch::allclose(sae.W_dec.grad(), orthogonal, 1e-5, 1e-5));
  {
    torch::NoGradGuard no_grad;
    sae.W_dec.mul_(torch::tensor({{2.0f}, {0.5f}, {3.0f}}));
  }
  normalize_decoder(sae);
  EXPECT_TRUE(torch::allclose(sae.W_dec.norm(2, 1), torch::ones({3}), 1e-6, 1e-6));
}
