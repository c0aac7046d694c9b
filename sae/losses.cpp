// Reconstruction and sparsity losses, each returned as this shard's share of the
// global-batch loss (see BatchContext), so data-parallel training matches one process.
#include "sae/losses.h"

#include "sae/jumprelu.h"

namespace sweep::sae {

torch::Tensor reconstruction_loss(const torch::Tensor& x, const torch::Tensor& x_hat,
                                  ReconLoss kind, const BatchContext& batch) {
  auto squared = (x - x_hat).pow(2).sum(1);
  return batch.mean_share(kind == ReconLoss::MSE ? squared : squared.sqrt());
}

torch::Tensor l1_loss(const torch::Tensor& f, const BatchContext& batch) {
  return batch.mean_share(f.abs().sum(1));
}

torch::Tensor jumprelu_l0_loss(const Sae& sae, const torch::Tensor& pre, const BatchContext& batch) {
  const auto& cfg = sae.config();
  auto l0_share = batch.mean_share(heaviside_step(pre, sae.threshold(), cfg.bandwidth).sum(1));
  // Global L0 = mean of the shards' shares; the loss is a function of it.
  auto l0 = batch.global_sum(l0_share.detach()) / static_cast<double>(batch.num_shards);
  auto deviation = l0 / cfg.target_l0 - 1.0;
  auto value = cfg.sparsity_penalty * deviation.pow(2);
  auto slope = 2.0 * cfg.sparsity_penalty * deviation / cfg.target_l0;
  auto linear = slope * l0_share;
  return value + (linear - linear.detach());
}

torch::Tensor topk_aux_loss(const Sae& sae, const torch::Tensor& pre, const torch::Tensor& residual,
                            const torch::Tensor& dead_mask, const BatchContext& batch) {
  const auto& cfg = sae.config();
  // Denominator over the global batch: sum_b ||e_b - mean(e)||^2, summed with or without dead
  // latents (global_sum is called the same way on every batch).
  auto e = residual.detach();
  auto mean_e = batch.global_sum(e.sum(0)) / static_cast<double>(batch.global_rows);
  auto denom = batch.global_sum((e - mean_e).pow(2).sum()).clamp_min(1e-12);
  int64_t n_dead = dead_mask.sum().item<int64_t>();
  if (n_dead == 0) return torch::zeros({}, pre.options());
  int64_t k_aux = std::min(cfg.k_aux > 0 ? cfg.k_aux : cfg.d_in / 2, n_dead);
  auto dead_pre = torch::relu(pre).masked_fill(dead_mask.logical_not(), 0.0);
  auto top = dead_pre.topk(k_aux, 1);
  auto f_aux = torch::zeros_like(pre).scatter(1, std::get<1>(top), std::get<0>(top));
  auto e_hat = f_aux.mm(sae.W_dec);
  return (e - e_hat).pow(2).sum() * static_cast<double>(batch.num_shards) / denom;
}

}  // namespace sweep::sae
