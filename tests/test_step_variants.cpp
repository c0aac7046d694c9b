// The training step's variants against the plain dense float32 step. The sparse step: for relu,
// topk, jumprelu, batchtopk and matryoshka (with the penalty and, for the TopK family, dead latents
// in the auxiliary loss), the same loss terms, gradients and weights within float rounding after
// several steps; auto picks sparse only for sparse codes. bfloat16 products (train.matmul_dtype):
// close to float32 for every architecture, dense and sparse, yet not equal (they are at work), with
// evaluation left in float32.
#include <gtest/gtest.h>

#include <numeric>

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
  for (auto arch : {sae::Arch::ReLU, sae::Arch::TopK, sae::Arch::JumpReLU, sae::Arch::BatchTopK, sae::Arch::Matryoshka}) {
    auto dense = train(job(arch, sae::StepMode::Dense), 8), sparse = train(job(arch, sae::StepMode::Sparse), 8);
    const auto name = sae::arch_name(arch);
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
  const int64_t width = sae::code_width(fired) + 3;
  auto chosen = sae::active_entries(fired, width);
  ASSERT_EQ(chosen.idx.sizes(), (std::vector<int64_t>{16, width}));
  auto counts = chosen.active.sum(1);
  EXPECT_TRUE(torch::equal(counts, (f > 0).sum(1))) << "each row lists its active latents";
  EXPECT_TRUE(torch::equal(torch::zeros_like(f).scatter_add(1, chosen.idx, chosen.active.to(f.scalar_type())), fired))
      << "exactly the firing latents, padding adding nothing";
  for (int64_t b = 0; b < 16; ++b) {
    const int64_t n = counts[b].item<int64_t>();
    EXPECT_FALSE(chosen.active[b].narrow(0, n, width - n).any().item<bool>()) << "padding follows the active entries, row " << b;
    if (n > 1) {
      auto listed = chosen.idx[b].narrow(0, 0, n);
      EXPECT_TRUE((listed.narrow(0, 1, n - 1) > listed.narrow(0, 0, n - 1)).all().item<bool>()) << "column order, row " << b;
    }
  }
}

TEST(SparseStep, AutoIsSparseForANarrowCodeOnly) {
  torch::manual_seed(0);
  auto f = torch::relu(torch::randn({16, 100}) - 1.5);  // about 7 of 100 active per row
  auto fired = sae::firing(f);
  EXPECT_TRUE(torch::equal(fired, (f > 0).to(f.scalar_type()))) << "firing is 1 where f > 0, 0 elsewhere";
  EXPECT_EQ(sae::code_width(fired), (f > 0).sum(1).max().item<int64_t>());
  auto with_nan = f.clone();
  with_nan[0][0] = NAN;
  const int64_t nan_width = sae::code_width(sae::firing(with_nan));  // sign(NaN) is 0 on the CPU, NaN elsewhere
  EXPECT_TRUE(nan_width >= 0 && nan_width <= 100) << "a NaN activation gives a width of the batch, not " << nan_width;
  auto code = sae::sparse_code(sae::largest_entries(f, sae::code_width(fired)), f, torch::zeros({16, 3}), torch::zeros({3, 100}),
                               torch::zeros({100}), torch::zeros({3}));
  EXPECT_TRUE(torch::equal(torch::zeros_like(f).scatter(1, code.idx, code.vals.detach()), f)) << "the code holds f exactly";
  for (auto [arch, d_sae, k, want_sparse] : {std::tuple{sae::Arch::TopK, 128, 4, true}, std::tuple{sae::Arch::TopK, 128, 32, false},
                                             std::tuple{sae::Arch::ReLU, 128, 0, false}}) {
    auto cfg = job(arch, sae::StepMode::Auto);
    cfg.sae.d_sae = d_sae;
    cfg.sae.k = k;
    sae::Sae model(cfg.sae, 1);
    EXPECT_EQ(model.forward_train(torch::randn({8, 64})).sparse(), want_sparse) << sae::arch_name(arch) << " k " << k;
  }
  // jumprelu: pre-activations about N(0, 1); a threshold of 0.1 lets half of them through, one of 3
  // about one in 700.
  for (auto [threshold, want_sparse] : {std::pair{0.1, false}, std::pair{3.0, true}}) {
    auto cfg = job(sae::Arch::JumpReLU, sae::StepMode::Auto);
    cfg.sae.init_threshold = threshold;
    sae::Sae model(cfg.sae, 1);
    EXPECT_EQ(model.forward_train(torch::randn({8, 64})).sparse(), want_sparse) << "jumprelu threshold " << threshold;
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
