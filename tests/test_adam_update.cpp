// The CPU's constrained Adam step (worker/optimizer_step.h over sae/adam_update.h) against the
// simplest correct one, LibTorch's Adam between the decoder constraint's two halves, over several
// steps of random gradients; the same bits with any thread count; and the written tensors' version
// counters moved, as an in-place operation moves them.
#include <gtest/gtest.h>

#include "sae/adam_update.h"
#include "sae/cpu_loops.h"
#include "worker/optimizer_step.h"

using namespace sweep;

namespace {

// An SAE large enough for the loops to split among threads (d_sae x d_in = 2^18 floats), with Adam
// as the trainer makes it.
struct Model {
  std::shared_ptr<sae::Sae> sae;
  std::unique_ptr<torch::optim::Adam> adam;
  Model() {
    sae::SaeConfig cfg;
    cfg.d_in = 200;  // not a whole number of eight-float vectors
    cfg.d_sae = 1311;
    sae = std::make_shared<sae::Sae>(cfg, 5);
    adam = std::make_unique<torch::optim::Adam>(
        sae->parameters(), torch::optim::AdamOptions(1e-3).betas(std::make_tuple(0.9, 0.999)).eps(1e-8));
  }
  // Step `s`'s gradients, the same for every model.
  void set_gradients(int s) {
    torch::manual_seed(100 + s);
    for (auto& p : sae->parameters()) p.mutable_grad() = torch::randn_like(p) * (s + 1);
  }
};

void reference_step(Model& m, double lr) {
  sae::remove_parallel_decoder_grad(*m.sae);
  static_cast<torch::optim::AdamOptions&>(m.adam->param_groups()[0].options()).lr(lr);
  m.adam->step();
  sae::normalize_decoder(*m.sae);
}

void expect_close(const Model& a, const Model& b) {
  auto pa = a.sae->named_parameters(), pb = b.sae->named_parameters();
  for (const auto& p : pa) {
    const auto& q = pb[p.key()];
    EXPECT_TRUE(torch::allclose(p.value(), q, 1e-5, 1e-6))
        << p.key() << ": largest difference " << (p.value() - q).abs().max().item<double>();
  }
}

}  // namespace

TEST(ConstrainedAdam, TheCpuStepFollowsLibTorchsAdamUnderTheDecoderConstraint) {
  Model fused, reference;
  for (int s = 0; s < 6; ++s) {
    const double lr = 1e-3 * (s + 1);
    fused.set_gradients(s);
    reference.set_gradients(s);
    worker::constrained_adam_step(*fused.adam, *fused.sae, lr);
    reference_step(reference, lr);
    EXPECT_TRUE(torch::allclose(fused.sae->W_dec.grad(), reference.sae->W_dec.grad(), 1e-5, 1e-5))
        << "W_dec's gradient, made orthogonal to its rows, at step " << s;
  }
  expect_close(fused, reference);
  EXPECT_TRUE(torch::allclose(fused.sae->W_dec.norm(2, 1), torch::ones({1311}), 1e-6, 1e-6));
  auto params = fused.sae->parameters(), reference_params = reference.sae->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto& a = worker::adam_state(*fused.adam, params[i]);
    auto& b = worker::adam_state(*reference.adam, reference_params[i]);
    EXPECT_EQ(a.step(), 6);
    EXPECT_EQ(a.step(), b.step());
    EXPECT_TRUE(torch::allclose(a.exp_avg(), b.exp_avg(), 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(a.exp_avg_sq(), b.exp_avg_sq(), 1e-5, 1e-6));
  }
}

TEST(ConstrainedAdam, TheCpuStepGivesTheSameBitsWithAnyThreadCount) {
  Model one, three;
  for (int s = 0; s < 3; ++s) {
    one.set_gradients(s);
    three.set_gradients(s);
    sae::set_cpu_loop_threads(1);
    worker::constrained_adam_step(*one.adam, *one.sae, 1e-3);
    sae::set_cpu_loop_threads(3);
    worker::constrained_adam_step(*three.adam, *three.sae, 1e-3);
    sae::set_cpu_loop_threads(1);
  }
  auto pa = one.sae->named_parameters(), pb = three.sae->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

TEST(ConstrainedAdam, TheCpuStepMovesTheVersionsOfWhatItWrites) {
  Model m;
  m.set_gradients(0);
  const auto& W_dec = m.sae->W_dec;
  const auto before = W_dec._version(), grad_before = W_dec.grad()._version();
  const auto enc_before = m.sae->W_enc._version();
  worker::constrained_adam_step(*m.adam, *m.sae, 1e-3);
  EXPECT_GT(W_dec._version(), before);
  EXPECT_GT(W_dec.grad()._version(), grad_before);
  EXPECT_GT(m.sae->W_enc._version(), enc_before);
}
