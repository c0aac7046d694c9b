// The training step's variants against the plain dense float32 step. The sparse step: for relu,
// topk, jumprelu, batchtopk and matryoshka (with the penalty and, for the TopK family, dead latents
// in the auxiliary loss), the same loss terms, gradients and weights within float rounding after
// several steps; auto picks sparse only for sparse codes. bfloat16 products (train.matmul_dtype):
// close to float32 for every architecture, dense and sparse, yet not equal (they are at work), with
// evaluation left in float32.
#include <gtest/gtest.h>

#include <numeric>

#include "sae/encoder.h"
#include "sae/products.h"
#include "sae/sparse_code.h"
#include "sharding/dataset.h"
#include "worker/communicator.h"
#include "worker/trainer.h"

using namespace sweep;

namespace {

worker::JobConfig job(sae::Arch arch, sae::StepMode step) {
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
  for (auto [arch, widths] : {std::pair{sae::Arch::ReLU, sae::CodeWidths::Auto}, std::pair{sae::Arch::ReLU, sae::CodeWidths::Planned},
                              std::pair{sae::Arch::TopK, sae::CodeWidths::Auto}, std::pair{sae::Arch::JumpReLU, sae::CodeWidths::Auto},
                              std::pair{sae::Arch::JumpReLU, sae::CodeWidths::Planned}, std::pair{sae::Arch::BatchTopK, sae::CodeWidths::Auto},
                              std::pair{sae::Arch::BatchTopK, sae::CodeWidths::Planned}, std::pair{sae::Arch::Matryoshka, sae::CodeWidths::Auto}}) {
    auto sparse_job = job(arch, sae::StepMode::Sparse);
    sparse_job.sae.code_widths = widths;  // on this CPU auto is the batch's own widest row
    auto dense = train(job(arch, sae::StepMode::Dense), 8), sparse = train(sparse_job, 8);
    const auto name = std::string(sae::arch_name(arch)) + (widths == sae::CodeWidths::Planned ? " planned" : "");
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
  auto cfg = job(sae::Arch::TopK, sae::StepMode::Dense);
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

TEST(SparseStep, ActiveEntriesListEveryFiringLatentOfARowInColumnOrderThenPadding) {
  torch::manual_seed(3);
  auto f = torch::relu(torch::randn({16, 100}) - 1.5);
  f[2].zero_();  // a row with nothing active: all padding
  auto fired = sae::firing(f);
  const int64_t widest = sae::widest_row(fired).item<int64_t>();
  EXPECT_EQ(widest, (f > 0).sum(1).max().item<int64_t>());
  const int64_t width = widest + 3;
  auto chosen = sae::active_entries(fired, width);
  ASSERT_EQ(chosen.idx.sizes(), (std::vector<int64_t>{16, width}));
  auto counts = chosen.active.sum(1);
  EXPECT_TRUE(torch::equal(counts, (f > 0).sum(1))) << "each row lists its active latents";
  EXPECT_TRUE(torch::equal(torch::zeros_like(f).scatter_add(1, chosen.idx, chosen.active.to(f.scalar_type())), fired))
      << "exactly the firing latents, padding adding nothing";
  for (int64_t b = 0; b < 16; ++b) {
    const int64_t n = counts[b].item<int64_t>();
    EXPECT_FALSE(chosen.active[b].narrow(0, n, width - n).any().item<bool>()) << "padding follows the active entries, row " << b;
    EXPECT_FALSE(chosen.idx[b].narrow(0, n, width - n).any().item<bool>()) << "padding is latent 0, row " << b;
    if (n > 1) {
      auto listed = chosen.idx[b].narrow(0, 0, n);
      EXPECT_TRUE((listed.narrow(0, 1, n - 1) > listed.narrow(0, 0, n - 1)).all().item<bool>()) << "column order, row " << b;
    }
  }
  // Narrower than the widest row: each row keeps its first `cut` entries, the rest are dropped.
  const int64_t cut = widest - 2;
  auto narrow = sae::active_entries(fired, cut);
  ASSERT_EQ(narrow.idx.sizes(), (std::vector<int64_t>{16, cut}));
  EXPECT_TRUE(torch::equal(narrow.idx, chosen.idx.narrow(1, 0, cut))) << "the first entries of each row, in column order";
  EXPECT_TRUE(torch::equal(narrow.active, chosen.active.narrow(1, 0, cut)));
  // The GPU's way (a running count, no device read) gives the same code, wide or cut.
  for (int64_t w : {width, cut, int64_t{1}}) {
    auto listed = sae::active_entries(fired, w), scanned = sae::active_entries_by_scan(fired, w);
    EXPECT_TRUE(torch::equal(scanned.idx, listed.idx)) << "width " << w;
    EXPECT_TRUE(torch::equal(scanned.active, listed.active)) << "width " << w;
  }
}

// W_enc's gradient over a code: the CPU's sparse product and the dense product over the scattered
// gradient that a GPU uses (no coalescing, so no device read) give the same sums.
TEST(SparseStep, TheEncoderWeightGradientIsTheSameFromTheSparseAndTheDenseProduct) {
  torch::manual_seed(5);
  auto f = torch::relu(torch::randn({32, 200}) - 1.5);
  auto chosen = sae::active_entries(sae::firing(f), sae::widest_row(sae::firing(f)).item<int64_t>() + 2);
  auto g = torch::randn(chosen.idx.sizes()) * chosen.active.to(torch::kFloat);  // 0 at padding, as in a step
  auto centred = torch::randn({32, 16});
  auto sparse = sae::chosen_latents_weight_gradient(chosen.idx, g, centred, 200);
  auto dense = sae::chosen_latents_weight_gradient(chosen.idx, g, centred, 200, /*dense_product=*/true);
  ASSERT_EQ(sparse.sizes(), (std::vector<int64_t>{16, 200}));
  EXPECT_TRUE(torch::allclose(sparse, dense, 1e-5, 1e-5));
  auto reference = centred.t().mm(torch::zeros_like(f).scatter_add_(1, chosen.idx, g));  // the dense step's product
  EXPECT_TRUE(torch::allclose(sparse, reference, 1e-5, 1e-5));
  EXPECT_GT(sparse.abs().max().item<double>(), 0.0);
}

TEST(SparseStep, TheCodeWidthIsPlannedFromTheWidestRowWithAutoSparseForANarrowCodeOnly) {
  auto cfg = job(sae::Arch::ReLU, sae::StepMode::Auto);  // d_sae 128
  EXPECT_EQ(sae::code_width_for(cfg.sae, 10, 1.25), 13) << "ceil(10 x 1.25)";
  EXPECT_EQ(sae::code_width_for(cfg.sae, 10, 1.0), 10);
  EXPECT_EQ(sae::code_width_for(cfg.sae, 12.8, 1.0), 13) << "auto: sparse up to a tenth of d_sae";
  EXPECT_EQ(sae::code_width_for(cfg.sae, 13, 1.0), 0) << "auto: dense past a tenth of d_sae";
  EXPECT_EQ(sae::code_width_for(cfg.sae, 0, 1.25), 1) << "at least 1";
  EXPECT_EQ(sae::code_width_for(cfg.sae, std::nan(""), 1.25), 0) << "a NaN activation: dense";
  EXPECT_EQ(sae::first_code_width(cfg.sae), 0) << "auto starts dense";
  cfg.sae.step = sae::StepMode::Sparse;
  EXPECT_EQ(sae::code_width_for(cfg.sae, 100, 1.25), 125) << "sparse stays sparse";
  EXPECT_EQ(sae::code_width_for(cfg.sae, 120, 1.25), 128) << "at most d_sae";
  EXPECT_EQ(sae::first_code_width(cfg.sae), 1);
  cfg.sae.step = sae::StepMode::Dense;
  EXPECT_EQ(sae::code_width_for(cfg.sae, 1, 1.25), 0);
  EXPECT_EQ(sae::first_code_width(cfg.sae), 0);
  for (auto [step, k, want] : {std::tuple{sae::StepMode::Auto, 4, 4}, std::tuple{sae::StepMode::Auto, 32, 0},
                               std::tuple{sae::StepMode::Sparse, 32, 32}, std::tuple{sae::StepMode::Dense, 4, 0}}) {
    auto topk = job(sae::Arch::TopK, step);
    topk.sae.k = k;
    EXPECT_EQ(sae::code_width_for(topk.sae, 100, 1.25), want) << "topk k " << k;
    EXPECT_EQ(sae::first_code_width(topk.sae), want) << "topk k " << k;
  }

  // The model follows the width it is given, and measures the widest row for the next plan.
  torch::manual_seed(0);
  auto x = torch::randn({8, 64});
  sae::Sae model(job(sae::Arch::ReLU, sae::StepMode::Auto).sae, 1);
  auto dense = model.forward_train(x, 0), sparse = model.forward_train(x, 5);
  EXPECT_FALSE(dense.sparse());
  ASSERT_TRUE(sparse.sparse());
  EXPECT_EQ(sparse.code.idx.size(1), 5);
  const auto widest = (dense.f > 0).sum(1).max().item<int64_t>();
  EXPECT_EQ(dense.widest.item<double>(), static_cast<double>(widest));
  // The batch's own width: exactly its widest row, and dense in auto past a tenth of d_sae.
  sae::Sae sparse_model(job(sae::Arch::ReLU, sae::StepMode::Sparse).sae, 1);
  auto own = sparse_model.forward_train(x, sae::kWidthOfTheBatch);
  ASSERT_TRUE(own.sparse());
  EXPECT_EQ(own.code.idx.size(1), widest);
  EXPECT_EQ(model.forward_train(x, sae::kWidthOfTheBatch).sparse(), 10 * widest <= 128) << "widest " << widest;
  // jumprelu measures the latents within its kernel's reach: with a threshold of 3, about one
  // pre-activation in 700 (they are about N(0, 1)); with 0.1, about half.
  for (auto [threshold, few] : {std::pair{0.1, false}, std::pair{3.0, true}}) {
    auto cfg_j = job(sae::Arch::JumpReLU, sae::StepMode::Auto);
    cfg_j.sae.init_threshold = threshold;
    sae::Sae jump(cfg_j.sae, 1);
    auto fwd = jump.forward_train(x, 0);
    auto reach = (fwd.pre > jump.threshold() - cfg_j.sae.bandwidth / 2).sum(1).max().item<double>();
    EXPECT_EQ(fwd.widest.item<double>(), reach) << "jumprelu threshold " << threshold;
    EXPECT_EQ(sae::code_width_for(cfg_j.sae, reach, 1.0) > 0, few) << "jumprelu threshold " << threshold;
  }
}

// Planned widths: a step whose code was cut is computed again from the state before it: the result must be the
// step computed once at the width it needed, bit for bit (the penalty's EMAs, the dead-latent
// counts and batchtopk's threshold are updated once).
TEST(SparseStep, AStepComputedAgainAfterACutCodeLeavesNoTrace) {
  for (auto arch : {sae::Arch::ReLU, sae::Arch::JumpReLU, sae::Arch::BatchTopK}) {
    auto cfg = job(arch, sae::StepMode::Sparse);
    cfg.sae.code_widths = sae::CodeWidths::Planned;
    cfg.absorption.enabled = true;
    auto data = sharding::open_dataset(cfg.data);
    worker::LocalCommunicator comm;
    std::vector<std::unique_ptr<worker::Trainer>> runs;
    for (bool cut : {true, false}) {
      auto trainer = std::make_unique<worker::Trainer>(cfg, comm, torch::kCPU);
      trainer->start_fresh(data->train_shard(0, cfg.train.batch_size, 0, 1).activations);
      for (int s = 0; s < 4; ++s) {
        auto x = data->train_shard(s, cfg.train.batch_size, 0, 1).activations;
        const auto widest = trainer->model().forward_train(x, 0).widest.item<double>();
        trainer->state().code_width = cut ? 1 : sae::code_width_for(cfg.sae, widest, 1.0);
        EXPECT_EQ(trainer->step(x).attempts, cut && widest > 1 ? 2 : 1) << sae::arch_name(arch) << " step " << s;
      }
      runs.push_back(std::move(trainer));
    }
    auto &again = runs[0]->state(), &once = runs[1]->state();
    const auto name = sae::arch_name(arch);
    auto params_again = again.model->parameters(), params_once = once.model->parameters();
    for (size_t p = 0; p < params_once.size(); ++p) EXPECT_TRUE(torch::equal(params_again[p], params_once[p])) << name << " parameter " << p;
    EXPECT_TRUE(torch::equal(again.tokens_since_fired, once.tokens_since_fired)) << name;
    EXPECT_TRUE(torch::equal(again.absorption.P, once.absorption.P)) << name;
    auto buffers_again = again.model->buffers(), buffers_once = once.model->buffers();  // batchtopk's threshold
    for (size_t b = 0; b < buffers_once.size(); ++b) EXPECT_TRUE(torch::equal(buffers_again[b], buffers_once[b])) << name << " buffer " << b;
  }
}

// A candidate search that falls due (here every 2 steps) runs before the step's update: the step
// is computed again over the new candidates, and the search is counted once.
TEST(SparseStep, ADueCandidateSearchRunsBeforeTheStepsUpdate) {
  auto cfg = job(sae::Arch::ReLU, sae::StepMode::Auto);
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
  for (auto arch : {sae::Arch::ReLU, sae::Arch::TopK, sae::Arch::JumpReLU, sae::Arch::BatchTopK, sae::Arch::Matryoshka}) {
    for (auto step : {sae::StepMode::Dense, sae::StepMode::Sparse}) {
      auto cfg = job(arch, step);
      auto float32 = train(cfg, 100);
      cfg.sae.matmul = sae::MatmulDtype::BFloat16;
      auto bfloat16 = train(cfg, 100);
      const auto name = std::string(sae::arch_name(arch)) + (step == sae::StepMode::Dense ? " dense" : " sparse");
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
  auto cfg = job(sae::Arch::ReLU, sae::StepMode::Dense);
  sae::Sae float32(cfg.sae, 1);
  cfg.sae.matmul = sae::MatmulDtype::BFloat16;
  sae::Sae bfloat16(cfg.sae, 1);
  auto x = torch::randn({32, 64});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(bfloat16.forward(x).x_hat, float32.forward(x).x_hat)) << "evaluation is float32";
  EXPECT_FALSE(torch::equal(bfloat16.forward_train(x).x_hat, float32.forward_train(x).x_hat)) << "training is not";
}
