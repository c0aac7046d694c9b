// The training step's variants against the plain dense float32 step. The sparse step: for relu,
// topk, jumprelu, batchtopk and matryoshka (with the penalty and, for the TopK family, dead latents
// in the auxiliary loss), the same loss terms, gradients and weights within float rounding after
// several steps; auto picks sparse only for sparse codes. bfloat16 products (train.matmul_dtype):
// close to float32 for every architecture, dense and sparse, yet not equal (they are at work), with
// evaluation left in float32.
#include <gtest/gtest.h>

#include <numeric>

#include "sae/encoder.h"
#include "sae/penalties/absorption.h"
#include "sae/losses.h"
#include "sae/products.h"
#include "sae/sparse_code.h"
#include "sharding/dataset.h"
#include "worker/communicator.h"
#include "worker/trainer.h"

using namespace sweep;

namespace {

worker::JobConfig job(const std::string& arch, sae::StepMode step) {
  worker::JobConfig cfg;
  cfg.data.eval_tokens = 0;
  cfg.sae.arch = arch;
  cfg.sae.d_in = 64;
  cfg.sae.d_sae = 128;
  cfg.sae.k = 4;
  cfg.sae.matryoshka_widths = {16, 48};  // matryoshka only
  cfg.sae.dead_after_tokens = 256;  // dead latents after one batch without firing: the aux loss works
  cfg.sae.step = step;
  cfg.train.batch_size = 256;
  cfg.train.lr = 1e-3;
  cfg.loss.l1_penalty = 0.15;
  // jumprelu: a threshold near the pre-activations and a wide kernel, so that entries lie within
  // the kernel below and above it and the threshold's gradient is at work.
  cfg.sae.init_threshold = 0.1;
  cfg.sae.bandwidth = 0.05;
  cfg.sae.target_l0 = 4;
  cfg.absorption.dot_threshold = 0.3;
  cfg.absorption.ratio_threshold = 2.0;
  return cfg;
}

struct Trained {
  std::vector<torch::Tensor> parameters, first_gradients;
  std::vector<double> losses;
};

Trained train(const worker::JobConfig& cfg, int steps) {
  auto data = sharding::open_dataset(cfg.data);
  worker::LocalCommunicator comm;
  worker::Trainer trainer(cfg, comm, torch::kCPU);
  trainer.start_fresh(data->train_shard(0, cfg.train.batch_size, 0, 1).activations);
  Trained out;
  for (int s = 0; s < steps; ++s) {
    out.losses.push_back(trainer.step(data->train_shard(s, cfg.train.batch_size, 0, 1).activations).loss);
    if (s == 0) {
      for (const auto& p : trainer.model().parameters()) out.first_gradients.push_back(p.grad().clone());
    }
  }
  for (const auto& p : trainer.model().parameters()) out.parameters.push_back(p.detach().clone());
  return out;
}

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

}  // namespace

TEST(SparseStep, GivesTheDenseLossesGradientsAndWeightsForEachArchitecture) {
  for (auto [arch, widths] : {std::pair{"relu", sae::CodeSizes::Auto}, std::pair{"relu", sae::CodeSizes::Planned},
                              std::pair{"topk", sae::CodeSizes::Auto}, std::pair{"jumprelu", sae::CodeSizes::Auto},
                              std::pair{"jumprelu", sae::CodeSizes::Planned}, std::pair{"batchtopk", sae::CodeSizes::Auto},
                              std::pair{"batchtopk", sae::CodeSizes::Planned}, std::pair{"matryoshka", sae::CodeSizes::Auto}}) {
    auto sparse_job = job(arch, sae::StepMode::Sparse);
    sparse_job.sae.code_sizes = widths;  // on this CPU auto is the batch's own entries
    auto dense = train(job(arch, sae::StepMode::Dense), 8), sparse = train(sparse_job, 8);
    const auto name = std::string(arch) + (widths == sae::CodeSizes::Planned ? " planned" : "");
    for (size_t s = 0; s < dense.losses.size(); ++s) {
      EXPECT_NEAR(sparse.losses[s], dense.losses[s], 1e-5 * std::abs(dense.losses[s])) << name << " step " << s;
    }
    ASSERT_EQ(sparse.parameters.size(), dense.parameters.size());
    for (size_t p = 0; p < dense.parameters.size(); ++p) {
      EXPECT_LT(relative_difference(sparse.first_gradients[p], dense.first_gradients[p]), 1e-5) << name << " gradient " << p;
      EXPECT_LT(relative_difference(sparse.parameters[p], dense.parameters[p]), 1e-5) << name << " parameter " << p;
      EXPECT_GT(dense.first_gradients[p].abs().max().item<double>(), 0.0) << name << " parameter " << p << " has no gradient";
    }
  }
}

TEST(SparseStep, TheAuxiliaryLossOfDeadLatentsIsTheSameSparse) {
  // A batch of 256 rows at k = 4 fires at most 1024 latent slots: of 2048 latents, at least half
  // are dead after one batch without firing, and the aux term counts.
  auto cfg = job("topk", sae::StepMode::Dense);
  cfg.sae.d_sae = 2048;
  auto data = sharding::open_dataset(cfg.data);
  worker::LocalCommunicator comm;
  std::vector<double> aux;
  for (auto step : {sae::StepMode::Dense, sae::StepMode::Sparse}) {
    cfg.sae.step = step;
    worker::Trainer trainer(cfg, comm, torch::kCPU);
    trainer.start_fresh(data->train_shard(0, cfg.train.batch_size, 0, 1).activations);
    for (int s = 0; s < 3; ++s) trainer.step(data->train_shard(s, 256, 0, 1).activations);
    aux.push_back(read_step_terms(trainer.step(data->train_shard(3, 256, 0, 1).activations)).aux);
  }
  EXPECT_GT(aux[0], 0.0) << "the auxiliary loss must be at work for this test to mean anything";
  EXPECT_NEAR(aux[1], aux[0], 1e-5 * aux[0]);
}

TEST(SparseStep, ActiveEntriesListEveryFiringLatentRowByRowInColumnOrderThenPadding) {
  torch::manual_seed(3);
  auto f = torch::relu(torch::randn({16, 100}) - 1.5);
  f[2].zero_();  // a row with nothing active: an empty bag
  auto fired = sae::firing(f);
  const int64_t entries = sae::code_entries(fired).item<int64_t>();
  EXPECT_EQ(entries, (f > 0).sum().item<int64_t>());
  // Counted exactly past float32's 2^24 (16777216), where a code sized from a rounded count would
  // silently drop entries: 4097 x 4097 = 16785409 is odd, so float32 cannot hold it.
  EXPECT_EQ(sae::code_entries(torch::ones({4097, 4097})).item<double>(), 16785409.0);
  const int64_t size = entries + 3;
  auto chosen = sae::active_entries(fired, size);
  ASSERT_EQ(chosen.idx.sizes(), (std::vector<int64_t>{size}));
  ASSERT_EQ(chosen.row.sizes(), (std::vector<int64_t>{size}));
  EXPECT_TRUE(torch::equal(chosen.active, torch::arange(size) < entries)) << "the entries, then padding";
  EXPECT_TRUE(torch::equal(torch::zeros_like(f).index_put_({chosen.row, chosen.idx}, chosen.active.to(f.scalar_type()), true), fired))
      << "exactly the firing latents, padding adding nothing";
  auto position = (chosen.row * 100 + chosen.idx).narrow(0, 0, entries);
  EXPECT_TRUE((position.narrow(0, 1, entries - 1) > position.narrow(0, 0, entries - 1)).all().item<bool>())
      << "row by row, in column order within a row";
  auto per_row = (f > 0).sum(1);
  EXPECT_TRUE(torch::equal(chosen.offsets, per_row.cumsum(0) - per_row)) << "each row's bag starts at its first entry";
  auto padding = torch::arange(entries, size);
  EXPECT_FALSE(chosen.idx.index_select(0, padding).any().item<bool>()) << "padding is latent 0";
  EXPECT_TRUE((chosen.row.index_select(0, padding) == 15).all().item<bool>()) << "of the last row";
  // Fewer than the batch's entries: the first `cut` are kept, and the rows past them are empty bags.
  const int64_t cut = entries - 5;
  auto narrow = sae::active_entries(fired, cut);
  EXPECT_TRUE(torch::equal(narrow.idx, chosen.idx.narrow(0, 0, cut)));
  EXPECT_TRUE(torch::equal(narrow.row, chosen.row.narrow(0, 0, cut)));
  EXPECT_TRUE(narrow.active.all().item<bool>());
  EXPECT_TRUE(torch::equal(narrow.offsets, chosen.offsets.clamp_max(cut)));
  // The GPU's way (a running count, no device read) gives the same code, whole or cut.
  for (int64_t n : {size, cut, int64_t{1}}) {
    auto listed = sae::active_entries(fired, n), scanned = sae::active_entries_by_scan(fired, n);
    EXPECT_TRUE(torch::equal(scanned.idx, listed.idx)) << "size " << n;
    EXPECT_TRUE(torch::equal(scanned.row, listed.row)) << "size " << n;
    EXPECT_TRUE(torch::equal(scanned.offsets, listed.offsets)) << "size " << n;
    EXPECT_TRUE(torch::equal(scanned.active, listed.active)) << "size " << n;
  }
}

// W_enc's gradient over a code: the CPU's sums over each latent's entries and the dense product
// over the scattered gradient that a GPU uses (no coalescing, so no device read) give the same sums.
TEST(SparseStep, TheEncoderWeightGradientIsTheSameFromTheSumsByLatentAndTheDenseProduct) {
  torch::manual_seed(5);
  auto f = torch::relu(torch::randn({32, 200}) - 1.5);
  auto chosen = sae::active_entries(sae::firing(f), sae::code_entries(sae::firing(f)).item<int64_t>() + 2);
  auto g = torch::randn(chosen.idx.sizes()) * chosen.active.to(torch::kFloat);  // 0 at padding, as in a step
  auto centred = torch::randn({32, 16});
  auto sparse = sae::chosen_latents_weight_gradient(chosen.idx, chosen.row, g, sae::latent_order(chosen.idx, 200), centred, 200);
  auto dense = sae::chosen_latents_weight_gradient(chosen.idx, chosen.row, g, {}, centred, 200);
  ASSERT_EQ(sparse.sizes(), (std::vector<int64_t>{16, 200}));
  EXPECT_TRUE(torch::allclose(sparse, dense, 1e-5, 1e-5));
  auto reference = centred.t().mm(torch::zeros_like(f).index_put_({chosen.row, chosen.idx}, g, true));  // the dense step's product
  EXPECT_TRUE(torch::allclose(sparse, reference, 1e-5, 1e-5));
  EXPECT_GT(sparse.abs().max().item<double>(), 0.0);
}

// A planned code ends in padding: latent 0 of the last row, with value 0. A threshold within half
// a bandwidth of 0 would see it inside the kernel; the code's active mask keeps its gradient (and
// the L0's) to the dense step's.
TEST(SparseStep, APaddedJumpReLUCodeGivesTheDenseGradientsWithAThresholdNearZero) {
  auto cfg = job("jumprelu", sae::StepMode::Sparse);
  cfg.sae.init_threshold = 0.01;  // below bandwidth / 2 = 0.025
  sae::Sae model(cfg.sae, 1);
  torch::manual_seed(7);
  auto x = torch::randn({32, 64});
  const sae::BatchContext batch{32, 1};
  auto gradients = [&](int64_t size) {
    auto fwd = model.forward_train(x, size);
    EXPECT_EQ(fwd.sparse(), size > 0);
    (sae::reconstruction_loss(x, fwd.x_hat, sae::ReconLoss::MSE, batch) + sae::jumprelu_l0_share(model, fwd, batch)).backward();
    std::vector<torch::Tensor> out;
    for (auto& p : model.parameters()) {
      out.push_back(p.grad().clone());
      p.mutable_grad() = torch::Tensor();
    }
    return out;
  };
  const auto entries = model.forward_train(x, 0).entries.item<int64_t>();
  auto dense = gradients(0), padded = gradients(entries + 50);
  for (size_t p = 0; p < dense.size(); ++p) EXPECT_LT(relative_difference(padded[p], dense[p]), 1e-5) << "parameter " << p;
  const auto& threshold = dense.back();  // log_threshold, registered last
  EXPECT_GT(threshold.abs().max().item<double>(), 0.0) << "the threshold's gradient must be at work";
  EXPECT_NEAR(padded.back()[0].item<double>(), threshold[0].item<double>(), 1e-6) << "latent 0's threshold";
}

TEST(SparseStep, TheCodeSizeIsPlannedFromTheEntriesWithAutoSparseForALowDensityOnly) {
  auto cfg = job("relu", sae::StepMode::Auto);  // d_sae 128: 8 rows hold 1024 latents
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 10, 8, 1.25), 13) << "ceil(10 x 1.25)";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 10, 8, 1.0), 10);
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 204, 8, 1.0), 204) << "auto: sparse up to 20% of the latents";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 205, 8, 1.0), 0) << "auto: dense past 20%";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 205, 16, 1.0), 205) << "of the rows' latents";
  const torch::Device gpu(torch::kCUDA, 0);  // a name only: nothing runs there
  EXPECT_EQ(sae::code_size_for(cfg.sae, gpu, 10, 8, 1.0), 10) << "auto on a GPU: sparse up to 1% of the latents";
  EXPECT_EQ(sae::code_size_for(cfg.sae, gpu, 11, 8, 1.0), 0) << "auto on a GPU: dense past 1%";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 0, 8, 1.25), 1) << "at least 1";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, std::nan(""), 8, 1.25), 0) << "a NaN activation: dense";
  EXPECT_EQ(sae::first_code_size(cfg.sae, 8), 0) << "auto starts dense";
  cfg.sae.step = sae::StepMode::Sparse;
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 100, 8, 1.25), 125) << "sparse stays sparse";
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 1000, 8, 1.25), 1024) << "at most rows x d_sae";
  EXPECT_EQ(sae::first_code_size(cfg.sae, 8), 1);
  cfg.sae.step = sae::StepMode::Dense;
  EXPECT_EQ(sae::code_size_for(cfg.sae, torch::kCPU, 1, 8, 1.25), 0);
  EXPECT_EQ(sae::first_code_size(cfg.sae, 8), 0);
  for (auto [step, k, want] : {std::tuple{sae::StepMode::Auto, 4, 32}, std::tuple{sae::StepMode::Auto, 32, 0},
                               std::tuple{sae::StepMode::Sparse, 32, 256}, std::tuple{sae::StepMode::Dense, 4, 0}}) {
    auto topk = job("topk", step);
    topk.sae.k = k;
    EXPECT_EQ(sae::code_size_for(topk.sae, torch::kCPU, 100, 8, 1.25), want) << "topk k " << k;
    EXPECT_EQ(sae::first_code_size(topk.sae, 8), want) << "topk k " << k;
  }

  // The model follows the size it is given, and counts the entries for the next plan.
  torch::manual_seed(0);
  auto x = torch::randn({8, 64});
  sae::Sae model(job("relu", sae::StepMode::Auto).sae, 1);
  auto dense = model.forward_train(x, 0), sparse = model.forward_train(x, 5);
  EXPECT_FALSE(dense.sparse());
  ASSERT_TRUE(sparse.sparse());
  EXPECT_EQ(sparse.code.idx.size(0), 5);
  const auto entries = (dense.f > 0).sum().item<int64_t>();
  EXPECT_EQ(dense.entries.item<double>(), static_cast<double>(entries));
  // The batch's own size: exactly its entries, and dense in auto past 20% of the latents.
  sae::Sae sparse_model(job("relu", sae::StepMode::Sparse).sae, 1);
  auto own = sparse_model.forward_train(x, sae::kSizeOfTheBatch);
  ASSERT_TRUE(own.sparse());
  EXPECT_EQ(own.code.idx.size(0), entries);
  EXPECT_EQ(model.forward_train(x, sae::kSizeOfTheBatch).sparse(), entries <= 204) << "entries " << entries;
  // jumprelu counts the latents within its kernel's reach: with a threshold of 3, about one
  // pre-activation in 700 (they are about N(0, 1)); with 0.1, about half.
  for (auto [threshold, few] : {std::pair{0.1, false}, std::pair{3.0, true}}) {
    auto cfg_j = job("jumprelu", sae::StepMode::Auto);
    cfg_j.sae.init_threshold = threshold;
    sae::Sae jump(cfg_j.sae, 1);
    auto fwd = jump.forward_train(x, 0);
    auto reach = (fwd.pre > jump.threshold() - cfg_j.sae.bandwidth / 2).sum().item<double>();
    EXPECT_EQ(fwd.entries.item<double>(), reach) << "jumprelu threshold " << threshold;
    EXPECT_EQ(sae::code_size_for(cfg_j.sae, torch::kCPU, reach, 8, 1.0) > 0, few) << "jumprelu threshold " << threshold;
  }
}

// Planned sizes: a step whose code was cut is computed again from the state before it: the result must be the
// step computed once at the size it needed, bit for bit (the penalty's EMAs, the dead-latent
// counts and batchtopk's threshold are updated once).
TEST(SparseStep, AStepComputedAgainAfterACutCodeLeavesNoTrace) {
  for (auto arch : {"relu", "jumprelu", "batchtopk"}) {
    auto cfg = job(arch, sae::StepMode::Sparse);
    cfg.sae.code_sizes = sae::CodeSizes::Planned;
    cfg.absorption.enabled = true;
    auto data = sharding::open_dataset(cfg.data);
    worker::LocalCommunicator comm;
    std::vector<std::unique_ptr<worker::Trainer>> runs;
    for (bool cut : {true, false}) {
      auto trainer = std::make_unique<worker::Trainer>(cfg, comm, torch::kCPU);
      trainer->start_fresh(data->train_shard(0, cfg.train.batch_size, 0, 1).activations);
      for (int s = 0; s < 4; ++s) {
        auto x = data->train_shard(s, cfg.train.batch_size, 0, 1).activations;
        const auto entries = trainer->model().forward_train(x, 0).entries.item<double>();
        trainer->state().code_size = cut ? 1 : sae::code_size_for(cfg.sae, torch::kCPU, entries, x.size(0), 1.0);
        EXPECT_EQ(trainer->step(x).attempts, cut && entries > 1 ? 2 : 1) << arch << " step " << s;
      }
      runs.push_back(std::move(trainer));
    }
    auto &again = runs[0]->state(), &once = runs[1]->state();
    const auto name = arch;
    auto params_again = again.model->parameters(), params_once = once.model->parameters();
    for (size_t p = 0; p < params_once.size(); ++p) EXPECT_TRUE(torch::equal(params_again[p], params_once[p])) << name << " parameter " << p;
    EXPECT_TRUE(torch::equal(again.tokens_since_fired, once.tokens_since_fired)) << name;
    EXPECT_TRUE(torch::equal(sae::pair_tracker(again.penalties)->P, sae::pair_tracker(once.penalties)->P)) << name;
    auto buffers_again = again.model->buffers(), buffers_once = once.model->buffers();  // batchtopk's threshold
    for (size_t b = 0; b < buffers_once.size(); ++b) EXPECT_TRUE(torch::equal(buffers_again[b], buffers_once[b])) << name << " buffer " << b;
  }
}

// A candidate search that falls due (here every 2 steps) runs before the step's update: the step
// is computed again over the new candidates, and the search is counted once.
TEST(SparseStep, ADueCandidateSearchRunsBeforeTheStepsUpdate) {
  auto cfg = job("relu", sae::StepMode::Auto);
  cfg.absorption.enabled = true;
  cfg.absorption.refresh_every = 2;
  auto data = sharding::open_dataset(cfg.data);
  worker::LocalCommunicator comm;
  worker::Trainer trainer(cfg, comm, torch::kCPU);
  trainer.start_fresh(data->train_shard(0, cfg.train.batch_size, 0, 1).activations);
  for (int s = 0; s < 6; ++s) {
    auto stats = trainer.step(data->train_shard(s, cfg.train.batch_size, 0, 1).activations);
    const bool due = s > 0 && s % 2 == 0;  // two EMA updates since the last search
    EXPECT_EQ(stats.refreshed, due) << "step " << s;
    EXPECT_EQ(stats.attempts, due ? 2 : 1) << "step " << s;
  }
}

TEST(MatmulDtype, AProductIsTheFloat32ProductOfItsRoundedInputsRoundedOnce) {
  torch::manual_seed(5);
  auto a = torch::randn({64, 48}), b = torch::randn({48, 32}), bias = torch::randn({32});
  EXPECT_TRUE(torch::equal(sae::product(a, b, sae::MatmulDtype::Float32, bias), torch::addmm(bias, a, b)))
      << "float32 is the plain product";
  auto rounded = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); };
  auto bf16 = sae::product(a, b, sae::MatmulDtype::BFloat16, bias);
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat) << "the result is widened back";
  auto exact = rounded(a).mm(rounded(b));
  // Only the product's bfloat16 result rounds: half a unit in the last of its 8 bits.
  EXPECT_LE(((bf16 - bias) - exact).abs().max().item<double>(), exact.abs().max().item<double>() * std::pow(2.0, -8));
  EXPECT_GT((bf16 - torch::addmm(bias, a, b)).abs().max().item<double>(), 0.0) << "bfloat16 inputs round";
}

TEST(MatmulDtype, BFloat16ProductsTrainCloseToFloat32ForEachArchitectureDenseAndSparse) {
  // The first step, from the same weights, differs by the products' rounding alone; over 100 steps
  // the trajectories part (Adam turns tiny gradient differences into whole steps), so the test asks
  // that the loss at the end be as low.
  auto late_loss = [](const Trained& t) {
    return std::accumulate(t.losses.end() - 10, t.losses.end(), 0.0) / 10.0;
  };
  for (auto arch : {"relu", "topk", "jumprelu", "batchtopk", "matryoshka"}) {
    for (auto step : {sae::StepMode::Dense, sae::StepMode::Sparse}) {
      auto cfg = job(arch, step);
      auto float32 = train(cfg, 100);
      cfg.sae.matmul = sae::MatmulDtype::BFloat16;
      auto bfloat16 = train(cfg, 100);
      const auto name = std::string(arch) + (step == sae::StepMode::Dense ? " dense" : " sparse");
      EXPECT_NEAR(bfloat16.losses[0], float32.losses[0], 0.01 * float32.losses[0]) << name << ": the first step";
      EXPECT_NEAR(late_loss(bfloat16), late_loss(float32), 0.05 * late_loss(float32)) << name << ": the last 10 of 100 steps";
      double furthest = 0.0;
      for (size_t p = 0; p < float32.first_gradients.size(); ++p) {
        furthest = std::max(furthest, relative_difference(bfloat16.first_gradients[p], float32.first_gradients[p]));
      }
      EXPECT_GT(furthest, 0.0) << name << ": the gradients equal float32's, so the bfloat16 products were not used";
    }
  }
}

TEST(MatmulDtype, EvaluationStaysFloat32) {
  auto cfg = job("relu", sae::StepMode::Dense);
  sae::Sae float32(cfg.sae, 1);
  cfg.sae.matmul = sae::MatmulDtype::BFloat16;
  sae::Sae bfloat16(cfg.sae, 1);
  auto x = torch::randn({32, 64});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(bfloat16.forward(x).x_hat, float32.forward(x).x_hat)) << "evaluation is float32";
  EXPECT_FALSE(torch::equal(bfloat16.forward_train(x).x_hat, float32.forward_train(x).x_hat)) << "training is not";
}
