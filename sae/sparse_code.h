// The sparse training step's maths: a batch's active latents as a fixed-width code (each row's
// latent ids and activations, padded with zeros), the encoder values of those latents with their
// gradient, and the decoder over them, so that only the encoder's forward product stays dense.
#pragma once

#include <torch/torch.h>

namespace sweep::sae {

struct SparseCode {
  torch::Tensor idx;   // [B, w] int64 latent ids: each row's active latents, then padding
  torch::Tensor vals;  // [B, w] their activations, with gradient; 0 at padding
};

// 1 where the activations `f` (>= 0) are > 0, else 0, in f's dtype and without gradient: one pass
// (sign) that serves both a row's count and a latent's (on one CPU thread at [1024, 16384], the
// comparison and the sum of its bools took 54 ms; sign, a row sum and a matrix-vector product 18 ms).
torch::Tensor firing(const torch::Tensor& f);

// The width a code needs for activations whose firing() is `fired` [B, d_sae]: the largest number
// of active latents in a row (reads the device); d_sae if that is not a number (where sign(NaN) is
// NaN; a NaN activation fails the step later with a clearer message).
int64_t code_width(const torch::Tensor& fired);

struct ChosenLatents {
  torch::Tensor idx;     // [B, w] int64
  torch::Tensor active;  // [B, w] bool: the entry's activation is > 0
};

// The `width` largest entries of each row of the activations `f` [B, d_sae] (no gradient).
ChosenLatents largest_entries(const torch::Tensor& f, int64_t width);

// Every entry of each row where the 0/1 firing `fired` [B, d_sae] is set, in column order, then
// padding (latent 0, inactive) up to `width`, which is at least code_width(fired). One nonzero()
// pass, which reads the device as code_width does. On one CPU thread, rows of 1024 x d_sae about
// 1.4% active: 1.2 ms at d_sae 768 and 24 ms at 16384, where a top-k of width took 2.5 and 57 ms.
ChosenLatents active_entries(const torch::Tensor& fired, int64_t width);

// The code of the chosen latents. Its values are their pre-activations where active (0 elsewhere),
// with gradient into W_enc, b_enc and b_dec: pre_bl = (x_b - b_dec) . W_enc[:, l] + b_enc_l, taken
// from `pre` (no gradient), with the backward pass written over the chosen latents only (a sparse
// product, no [B, d_sae] tensor).
SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec);

// sum_l vals_bl W_dec[idx_bl] per row, [B, d_in] (without b_dec), through embedding_bag.
torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code);

}  // namespace sweep::sae
