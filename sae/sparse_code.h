// The sparse training step's maths: a batch's active latents as a ragged code (the entries of each
// row in turn: latent ids, rows and activations, then padding), the encoder values of those
// latents with their gradient, and the decoder over them, so that only the encoder's forward
// product stays dense. The code costs what its entries cost, the batch's L0, not its widest row.
// Its size (entries, padding included) is this batch's own count (read from the device: free on a
// CPU), or planned from the step before (code_size_for), so that building the code reads nothing;
// entries past a planned size are cut, and the step's own count, read with its loss, tells the
// trainer to compute it again (train.code_width).
#pragma once

#include <torch/torch.h>

#include "sae/sae_config.h"
#include "sae/sparse_kernels.h"

namespace sweep::sae {

// The entries of a batch of B rows that a code holds, n of them in all: row 0's, row 1's, ...,
// then padding (latent 0 of the last row, inactive).
struct ChosenLatents {
  torch::Tensor idx;      // [n] int64 latent ids
  torch::Tensor row;      // [n] int64 each entry's row
  torch::Tensor offsets;  // [B] int64 where each row's entries start (embedding_bag's bags; at most n)
  torch::Tensor active;   // [n] bool: a chosen entry (topk: whose activation is > 0), not padding
};

struct SparseCode : ChosenLatents {
  torch::Tensor vals;      // [n] the entries' activations, with gradient; 0 where not active
  LatentOrder by_latent;   // on a CPU, the entries by latent, for W_dec's and W_enc's gradients
  // The same entries with other values.
  SparseCode with_values(const torch::Tensor& values) const { return {{*this}, values, by_latent}; }
};

// 1 where the activations `f` (>= 0) are > 0, else 0, in f's dtype and without gradient: one pass
// (sign) that serves both a row's count and a latent's (on one CPU thread at [1024, 16384], the
// comparison and the sum of its bools took 54 ms; sign, a row sum and a matrix-vector product 18 ms).
torch::Tensor firing(const torch::Tensor& f);

// The entries set in the 0/1 firing `fired` [B, d_sae], as a float64 device scalar (read with the
// step's loss): exact past float32's 2^24, where a code of that size would silently lose entries.
// NaN where an activation is NaN on a GPU (sign(NaN) is NaN there); code_size_for then plans a
// dense step.
torch::Tensor code_entries(const torch::Tensor& fired);

// How many entries to build a training step's code of `rows` rows with on `device`, from
// `entries`, the entries of a step (the one before, or this one when it is computed again). 0 means
// a dense step.
// - step = "dense": 0. An architecture with a fixed size (Architecture::fixed_code_size): that
//   (topk: k x rows, 0 in auto when k is over a tenth of d_sae).
// - otherwise ceil(entries x headroom), at least 1 and at most rows x d_sae; in auto, 0 when a row
//   holds over sparse_density_limit(device) of d_sae on average, or entries is not a number.
int64_t code_size_for(const SaeConfig& cfg, const torch::Device& device, double entries, int64_t rows, double headroom);
// The size of a job's first step, with no count known: auto's is dense (topk's k x rows),
// sparse's is 1, so that its first step is computed again at the size it needs.
int64_t first_code_size(const SaeConfig& cfg, int64_t rows);
// The mean share of d_sae a row may hold for auto to take the sparse step. On a CPU, measured
// (README: the crossover lies at about 27% at d_sae 768 and 19-20% at 16384). On a GPU, not
// measured: dense products run near the device's peak there while the sparse step's gathers and
// scatters are bound by memory, and a model of both puts the crossover near 2-3% (README).
inline constexpr double kSparseDensityOnCpu = 0.2, kSparseDensityOnGpu = 0.01;
double sparse_density_limit(const torch::Device& device);
// The headroom planned over the last step's entries: a cut code costs the step twice.
inline constexpr double kCodeHeadroom = 1.1;
// A code size that says: code_size_for(this batch's own entries, headroom 1.0), read from the device.
inline constexpr int64_t kSizeOfTheBatch = -1;

// Every row's `width` largest entries of the activations `f` [B, d_sae] (no gradient); active
// where > 0.
ChosenLatents largest_entries(const torch::Tensor& f, int64_t width);
// The code of a fixed number of latents a row, idx and active [B, w].
ChosenLatents fixed_width_code(const torch::Tensor& idx, const torch::Tensor& active);

// The first `size` entries where the 0/1 firing `fired` [B, d_sae] is set, row by row and in
// column order within a row, then padding; entries past `size` are cut. Shapes depend on `size`
// alone. On the CPU from a pass over each row (list_set_entries); on a GPU from a running count over
// the batch (active_entries_by_scan), which makes no device read. Both give the same code.
ChosenLatents active_entries(const torch::Tensor& fired, int64_t size);
ChosenLatents active_entries_by_scan(const torch::Tensor& fired, int64_t size);

// The entries of a [B, d_sae] tensor at a code's (row, latent), [n]; without gradient on a CPU, a
// loop (sae/sparse_kernels.h, float32).
torch::Tensor at_code(const torch::Tensor& dense, const ChosenLatents& at);

// The code of the chosen latents. Its values are their pre-activations where active (0 elsewhere),
// with gradient into W_enc, b_enc and b_dec: pre_bl = (x_b - b_dec) . W_enc[:, l] + b_enc_l, taken
// from `pre` (no gradient), with the backward pass written over the chosen entries only (sums over
// each latent's entries, no [B, d_sae] tensor, on a CPU).
SparseCode sparse_code(const ChosenLatents& chosen, const torch::Tensor& pre, const torch::Tensor& x,
                       const torch::Tensor& W_enc, const torch::Tensor& b_enc, const torch::Tensor& b_dec);

// sum_l vals_bl W_dec[idx_bl] per row, [B, d_in] (without b_dec): on a CPU the loops of
// sae/sparse_kernels.h, forward and backward; on a GPU embedding_bag.
torch::Tensor sparse_decode(const torch::Tensor& W_dec, const SparseCode& code);

}  // namespace sweep::sae
