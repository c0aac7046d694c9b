// The SAE module: parameters, encoder activation per architecture, and decoder.
// f = act(W_enc^T-layout (x - b_dec) + b_enc), x_hat = f W_dec + b_dec (SAELens layout).
// BatchTopK trains on the k x B largest activations of its batch shard and infers with a
// threshold, an EMA of the smallest activation kept during training (as SAELens does). Matryoshka
// is BatchTopK whose loss also reconstructs from each nested prefix of the latents (sae/losses.h).
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"
#include "sae/sparse_code.h"

namespace sweep::sae {

struct Forward {
  torch::Tensor pre;    // [B, d_sae] pre-activations
  torch::Tensor f;      // [B, d_sae] latent activations (>= 0)
  torch::Tensor x_hat;  // [B, d_in]
  torch::Tensor fired;  // [B, d_sae] firing(f), where a training step needed it (every dense one), else undefined
  // Training, step != "dense", all but topk: the entries the batch's code needs (code_entries; for
  // jumprelu, the latents within the threshold kernel's reach), for code_size_for. Undefined otherwise.
  torch::Tensor entries;
  // A sparse training step (undefined idx otherwise): the active latents with gradient; pre and f
  // are then detached, and gradient reaches the parameters only through the code.
  SparseCode code;
  bool sparse() const { return code.idx.defined(); }
};

class Sae : public torch::nn::Module {
 public:
  // Deterministic in seed: every rank that builds Sae(cfg, seed) holds identical parameters.
  Sae(const SaeConfig& cfg, uint64_t seed);

  // Inference (evaluation, export): batchtopk applies its threshold.
  Forward forward(const torch::Tensor& x) const;
  // Training: batchtopk keeps the k x B largest activations of the batch; the others as forward.
  // `code_size` 0: a dense step; kSizeOfTheBatch: as code_size_for gives this batch's own
  // entries (reading their count from the device); else a sparse step over a code of that many
  // entries (code_size_for; topk: k a row), cut there, reading nothing. A sparse jumprelu code
  // also holds the latents just below their threshold, for its gradient.
  Forward forward_train(const torch::Tensor& x, int64_t code_size = 0) const;
  torch::Tensor encode(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& f) const;
  // Per-latent firing threshold (jumprelu only): exp(log_threshold); threshold_at(idx) of a code's
  // latents, idx's shape, with gradient.
  torch::Tensor threshold() const;
  torch::Tensor threshold_at(const torch::Tensor& idx) const;

  const SaeConfig& config() const { return cfg_; }

  torch::Tensor W_enc;          // [d_in, d_sae]
  torch::Tensor W_dec;          // [d_sae, d_in], rows are unit-norm decoder directions
  torch::Tensor b_enc;          // [d_sae]
  torch::Tensor b_dec;          // [d_in]
  torch::Tensor log_threshold;  // [d_sae], jumprelu only (undefined otherwise)
  torch::Tensor batch_threshold;  // [1] buffer, batchtopk and matryoshka only: the inference threshold

 private:
  torch::Tensor activate(const torch::Tensor& pre) const;
  Forward run(const torch::Tensor& x, bool training, int64_t code_size) const;
  // jumprelu: the pre-activations' distance above theta - bandwidth / 2, 0 below (no gradient).
  torch::Tensor jumprelu_reach(const torch::Tensor& pre) const;
  SaeConfig cfg_;
};

// Decoder unit-norm constraint: drop the gradient component along each decoder row
// (before the optimiser step), then renormalise the rows (after it).
void remove_parallel_decoder_grad(Sae& sae);
void normalize_decoder(Sae& sae);

}  // namespace sweep::sae
