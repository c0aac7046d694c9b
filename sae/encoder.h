// The encoder's pre-activations pre = (x - b_dec) W_enc + b_enc as autograd functions whose
// backward passes skip x's gradient (activations never need one): dense over [B, d_sae], and over
// a sparse code's chosen entries. Autograd's own addmm would spend one product of the step's six
// on the [B, d_in] gradient of x - b_dec only to sum it into b_dec's.
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"
#include "sae/sparse_kernels.h"

namespace sweep::sae {

// [B, d_sae], with gradient into W_enc, b_enc and b_dec (b_dec's as -W_enc times b_enc's); the
// products forward and backward in `dtype`.
torch::Tensor encoder_preactivations(const torch::Tensor& x, const torch::Tensor& W_enc, const torch::Tensor& b_enc,
                                     const torch::Tensor& b_dec, MatmulDtype dtype = MatmulDtype::Float32);

// The pre-activations `chosen` [n] of the entries (row, idx) [n], already computed (no gradient),
// returned with gradient into W_enc (chosen_latents_weight_gradient), b_enc and b_dec.
torch::Tensor chosen_preactivations(const torch::Tensor& chosen, const torch::Tensor& idx, const torch::Tensor& row,
                                    const LatentOrder& by_latent, const torch::Tensor& x, const torch::Tensor& W_enc,
                                    const torch::Tensor& b_enc, const torch::Tensor& b_dec);

// W_enc's gradient [d_in, d_sae] from the gradient `g` [n] of the pre-activations at the entries
// (row, idx) [n], with `centred` = x - b_dec [B, d_in]. With the entries' order by latent (a CPU's),
// the sums over each latent's entries; without it (a GPU's), a dense product over g added into
// [B, d_sae]. Both give the same sums.
torch::Tensor chosen_latents_weight_gradient(const torch::Tensor& idx, const torch::Tensor& row, const torch::Tensor& g,
                                             const LatentOrder& by_latent, const torch::Tensor& centred, int64_t d_sae);

}  // namespace sweep::sae
