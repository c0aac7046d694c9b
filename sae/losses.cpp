// Reconstruction and sparsity losses, each returned as this shard's share of the
// global-batch loss (see BatchContext), so data-parallel training matches one process.
#include "sae/losses.h"

#include "sae/jumprelu.h"
#include "sae/products.h"
#include "sae/sparse_code.h"

namespace sweep::sae {

torch::Tensor reconstruction_loss(const torch::Tensor& x, const torch::Tensor& x_hat,
                                  ReconLoss kind, const BatchContext& batch) {
  auto squared = (x - x_hat).pow(2).sum(1);
  return batch.mean_share(kind == ReconLoss::MSE ? squared : squared.sqrt());
}

torch::Tensor matryoshka_reconstruction_loss(const Sae& sae, const Forward& fwd, const torch::Tensor& x,
                                             ReconLoss kind, const BatchContext& batch) {
  const auto widths = matryoshka_prefixes(sae.config());
  const auto& weights = sae.config().matryoshka_weights;
  auto weight = [&](size_t m) { return weights.empty() ? 1.0 : weights.at(m); };
  auto total = weight(widths.size() - 1) * reconstruction_loss(x, fwd.x_hat, kind, batch);
  torch::Tensor partial = sae.b_dec.unsqueeze(0);  // dense: the prefixes' decodes, segment by segment
  int64_t done = 0;
  for (size_t m = 0; m + 1 < widths.size(); ++m) {
    const int64_t width = widths[m];
    if (fwd.sparse()) {
      auto inside = (fwd.code.idx < width).to(fwd.code.vals.scalar_type());
      partial = sparse_decode(sae.W_dec, fwd.code.with_values(fwd.code.vals * inside)) + sae.b_dec;
    } else {
      partial = partial + product(fwd.f.narrow(1, done, width - done), sae.W_dec.narrow(0, done, width - done),
                                  sae.config().matmul);
      done = width;
    }
    total = total + weight(m) * reconstruction_loss(x, partial, kind, batch);
  }
  return total;
}

torch::Tensor l1_loss(const torch::Tensor& f, const BatchContext& batch) {
  return batch.mean_share(f.sum(-1));  // rows of [B, d_sae], or a code's entries at once
}

torch::Tensor jumprelu_l0_share(const Sae& sae, const Forward& fwd, const BatchContext& batch) {
  const double bw = sae.config().bandwidth;
  // A sparse code holds every entry within the kernel's reach; the others add 0 and no gradient.
  const auto& code = fwd.code;
  auto steps = fwd.sparse() ? heaviside_step(at_code(fwd.pre, code), sae.threshold_at(code.idx), bw) *
                                  code.active.to(fwd.pre.scalar_type())
                            : heaviside_step(fwd.pre, sae.threshold(), bw);
  return batch.mean_share(steps.sum(-1));
}

torch::Tensor jumprelu_l0_loss(const SaeConfig& cfg, const torch::Tensor& l0_share, const torch::Tensor& shares,
                               const BatchContext& batch) {
  // Global L0 = mean of the shards' shares; the loss is a function of it.
  auto l0 = shares / static_cast<double>(batch.num_shards);
  auto deviation = l0 / cfg.target_l0 - 1.0;
  auto value = cfg.sparsity_penalty * deviation.pow(2);
  auto slope = 2.0 * cfg.sparsity_penalty * deviation / cfg.target_l0;
  auto linear = slope * l0_share;
  return value + (linear - linear.detach());
}

torch::Tensor topk_aux_loss(const Sae& sae, const Forward& fwd, const torch::Tensor& x, const torch::Tensor& residual,
                            const torch::Tensor& dead_mask, const torch::Tensor& residual_sums, const BatchContext& batch) {
  const auto& cfg = sae.config();
  // sum_b ||e_b - mean(e)||^2 = sum_b ||e_b||^2 - B ||mean(e)||^2, from the group's sums.
  const double rows = static_cast<double>(batch.global_rows);
  const int64_t d_in = residual_sums.size(0) - 1;
  auto mean_e = residual_sums.narrow(0, 0, d_in) / rows;
  auto denom = (residual_sums[d_in] - rows * mean_e.pow(2).sum()).clamp_min(1e-12);
  auto e = residual.detach();
  // k_aux of the dead latents' pre-activations; with fewer dead ones the rest select zeros.
  int64_t k_aux = std::min(cfg.k_aux > 0 ? cfg.k_aux : cfg.d_in / 2, cfg.d_sae);
  auto dead_pre = torch::relu(fwd.pre).masked_fill(dead_mask.logical_not(), 0.0);
  torch::Tensor e_hat;
  if (fwd.sparse()) {
    e_hat = sparse_decode(sae.W_dec, sparse_code(largest_entries(dead_pre, k_aux), fwd.pre, x, sae.W_enc, sae.b_enc, sae.b_dec));
  } else {
    auto top = dead_pre.topk(k_aux, 1);
    auto f_aux = torch::zeros_like(fwd.pre).scatter(1, std::get<1>(top), std::get<0>(top));
    e_hat = product(f_aux, sae.W_dec, cfg.matmul);
  }
  auto any_dead = dead_mask.any().to(fwd.pre.scalar_type());
  return any_dead * (e - e_hat).pow(2).sum() * static_cast<double>(batch.num_shards) / denom;
}

}  // namespace sweep::sae
