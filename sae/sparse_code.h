// The sparse training step's maths: a batch's active latents as a fixed-width code (each row's
// latent ids and activations, padded with zeros), the encoder values of those latents with their
// gradient, and the decoder over them, so that only the encoder's forward product stays dense.
// The code's width is the batch's own widest row (read from the device: free on a CPU), or planned
// from the step before (code_width_for), so that building the code reads nothing; a row wider than
// the plan is cut, and the step's own widest row, read with its loss, tells the trainer to compute
// it again (train.code_width).
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"

namespace sweep::sae {

struct SparseCode {
  torch::Tensor idx;   // [B, w] int64 latent ids: each row's active latents, then padding
  torch::Tensor vals;  // [B, w] their activations, with gradient; 0 at padding
};

// 1 where the activations `f` (>= 0) are > 0, else 0, in f's dtype and without gradient: one pass
// (sign) that serves both a row's count and a latent's (on one CPU thread at [1024, 16384], the
// comparison and the sum of its bools took 54 ms; sign, a row sum and a matrix-vector product 18 ms).
torch::Tensor firing(const torch::Tensor& f);

// The largest number of entries a row of the 0/1 firing `fired` [B, d_sae] holds, as a device
// scalar in fired's dtype (read with the step's loss). NaN where an activation is NaN on a GPU
// (sign(NaN) is NaN there); code_width_for then plans a dense step.
torch::Tensor widest_row(const torch::Tensor& fired);

// How wide to build a training step's code, from `widest`, the widest row of a step (the one
// before, or this one when it is computed again). 0 means a dense step.
// - step = "dense": 0. topk: k (0 in auto when k is over a tenth of d_sae).
// - otherwise ceil(widest x headroom), at least 1 and at most d_sae; in auto, 0 when widest is
//   over a tenth of d_sae (measured on 2 CPU cores, d_in 256, batch 1024: the sparse step is the
//   faster up to about that at d_sae 4096 and 16384), or not a number.
int64_t code_width_for(const SaeConfig& cfg, double widest, double headroom);
// The width of a job's first step, with no widest row known: auto's is dense (topk's k), sparse's
// is 1, so that its first step is computed again at the width it needs.
int64_t first_code_width(const SaeConfig& cfg);
// The headroom planned over the last step's widest row: a cut row costs the step twice.
inline constexpr double kCodeHeadroom = 1.25;
// A code width that says: code_width_for(this batch's own widest row, 1.0), read from the device.
inline constexpr int64_t kWidthOfTheBatch = -1;

struct ChosenLatents {
  torch::Tensor idx;     // [B, w] int64
  torch::Tensor active;  // [B, w] bool: the entry's activation is > 0
};

// The `width` largest entries of each row of the activations `f` [B, d_sae] (no gradient).
ChosenLatents largest_entries(const torch::Tensor& f, int64_t width);

// The first `width` entries of each row where the 0/1 firing `fired` [B, d_sae] is set, in column
// order, then padding (latent 0, inactive); a row with more is cut at `width`. Shapes depend on
// `width` alone. On the CPU from one nonzero() pass (rows of 1024 x d_sae about 1.4% active, one
// thread: 1.2 ms at d_sae 768 and 35 ms at 16384); on a GPU from a running count along each row
// (active_entries_by_scan), which makes no device read. Both give the same code.
ChosenLatents active_entries(const torch::Tensor& fired, int64_t width);
ChosenLatents active_entries_by_scan(const torch::Tensor& fired, int64_t width);

// The code of the chosen latents. Its values are their pre-activations where active (0 elsewhere),
// with gradient into W_enc, b_enc and b_dec: pre_bl = (x_b - b_dec) . W_enc[:, l] + b_enc_l, taken
// from `pre` (no gradient), with the backward pass written over the chosen latents only (a sparse
// product, no [B, d_sae] tensor).
SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec);

// sum_l vals_bl W_dec[idx_bl] per row, [B, d_in] (without b_dec), through embedding_bag.
torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code);

}  // namespace sweep::sae
