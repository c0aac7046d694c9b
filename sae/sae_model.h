// The SAE module: parameters, encoder, the activation of its architecture (sae/architecture.h),
// and decoder. f = act(W_enc^T-layout (x - b_dec) + b_enc), x_hat = f W_dec + b_dec (SAELens
// layout). Also the pieces an architecture's training forward is made of: a step's code size, the
// sparse code of chosen latents and the decoders over it.
#pragma once

#include <torch/torch.h>

#include "sae/architecture.h"
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
  const Architecture& architecture() const { return *arch_; }

  torch::Tensor W_enc;          // [d_in, d_sae]
  torch::Tensor W_dec;          // [d_sae, d_in], rows are unit-norm decoder directions
  torch::Tensor b_enc;          // [d_sae]
  torch::Tensor b_dec;          // [d_in]
  torch::Tensor log_threshold;  // [d_sae], jumprelu only (undefined otherwise)
  torch::Tensor batch_threshold;  // [1] buffer, batchtopk and matryoshka only: the inference threshold

 private:
  Forward run(const torch::Tensor& x, bool training, int64_t code_size) const;
  SaeConfig cfg_;
  const Architecture* arch_;
};

// The pieces of a training forward (Architecture::forward_train).
// The code size of this step: `code_size` as forward_train was given it, or where that is
// kSizeOfTheBatch, code_size_for this batch's `entries` (a device scalar, read here; undefined: 0).
int64_t step_code_size(const Sae& sae, const torch::Tensor& x, int64_t code_size, const torch::Tensor& entries);
// A sparse step over the chosen latents: pre and f detached, the code with its values' gradient.
void code_the_chosen(const Sae& sae, const torch::Tensor& x, const ChosenLatents& chosen, Forward& out);
// x_hat from the code (sparse) or from f (dense, in the step's matmul dtype).
void decode_the_code(const Sae& sae, Forward& out);
void decode_densely(const Sae& sae, Forward& out);

// Decoder unit-norm constraint: drop the gradient component along each decoder row
// (before the optimiser step), then renormalise the rows (after it).
void remove_parallel_decoder_grad(Sae& sae);
void normalize_decoder(Sae& sae);

}  // namespace sweep::sae
