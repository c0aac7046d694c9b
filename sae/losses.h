// Loss terms of the SAE objective other than the absorption penalty: reconstruction (Matryoshka's per prefix),
// L1 sparsity (relu), the JumpReLU L0 target and the TopK auxiliary dead-latent loss.
#pragma once

#include <torch/torch.h>

#include "sae/batch_context.h"
#include "sae/sae_config.h"
#include "sae/sae_model.h"

namespace sweep::sae {

// mse: mean_b ||x - x_hat||^2 ; l2norm: mean_b ||x - x_hat||_2.
torch::Tensor reconstruction_loss(const torch::Tensor& x, const torch::Tensor& x_hat,
                                  ReconLoss kind, const BatchContext& batch);

// Matryoshka: the sum over its nested prefixes, each weighted (sae.matryoshka_weights; 1 when
// empty), of the reconstruction loss from the prefix's latents alone (b_dec + f[:, :w] W_dec[:w]),
// the whole dictionary's (fwd.x_hat) last. The step's latents are chosen once, over the whole
// dictionary, and each prefix keeps those it holds.
torch::Tensor matryoshka_reconstruction_loss(const Sae& sae, const Forward& fwd, const torch::Tensor& x,
                                             ReconLoss kind, const BatchContext& batch);

// mean_b ||f||_1 (unweighted) of activations f >= 0, so the sum of f: no |f| pass, nor its sign in
// backward (f's gradient at 0 differs, but ReLU's backward zeroes it there). Of a sparse step's code
// values, which hold the same.
torch::Tensor l1_loss(const torch::Tensor& f, const BatchContext& batch);

// This shard's share of JumpReLU's L0 = mean_b sum_i H(pre - theta), with the threshold's
// straight-through gradient, from the step's forward (its code when sparse).
torch::Tensor jumprelu_l0_share(const Sae& sae, const Forward& fwd, const BatchContext& batch);

// sparsity_penalty * (L0 / target_l0 - 1)^2 of the global L0, from `shares`, the sum of the
// shards' shares (reduced with the step's statistics). Its value is the global one; its gradient,
// averaged over shards, is the global gradient.
torch::Tensor jumprelu_l0_loss(const SaeConfig& cfg, const torch::Tensor& l0_share, const torch::Tensor& shares,
                               const BatchContext& batch);

// TopK auxiliary loss: the top-k_aux pre-activations of dead latents reconstruct the detached
// residual e = x - x_hat; ||e - e_hat||^2 / sum_b ||e_b - mean(e)||^2 over the global batch (the
// denominator from `residual_sums` [d_in + 1], the group's sum_b e_b then sum_b |e_b|^2). Zero, with no gradient, when no latent is dead;
// the dead set stays on the device. The dead latents' reconstruction is sparse when the step's
// forward `fwd` (of the shard x) is.
torch::Tensor topk_aux_loss(const Sae& sae, const Forward& fwd, const torch::Tensor& x, const torch::Tensor& residual,
                            const torch::Tensor& dead_mask, const torch::Tensor& residual_sums, const BatchContext& batch);

}  // namespace sweep::sae
