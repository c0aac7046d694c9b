// The CPU loops of the sparse step over a ragged code (sae/sparse_code.h): listing a batch's set
// entries, the decoder's sums over each row's entries, the gradient of each entry's value, and the
// sums over each latent's entries that W_dec's and W_enc's gradients are. Each is one pass over the
// code's entries, a row of d_in floats apiece. LibTorch 1.13's own operations for these cost far more
// on a CPU: embedding_bag's backward sorts the indices, a sparse product coalesces them, nonzero
// lists positions that are divided back into rows and columns (README, "The sparse step").
// Float32 only. Every output element is summed in one order whatever the threads, so a result
// repeats bit for bit with any thread count.
#pragma once

#include <torch/torch.h>

namespace sweep::sae {

// A code's entries grouped by latent: `order` [n] holds the entry numbers latent by latent, each
// latent's in code order (so rows ascending); latent l's are order[starts[l] .. starts[l + 1]),
// `starts` [d_sae + 1] int64. Undefined on a GPU, whose step does without it.
struct LatentOrder {
  torch::Tensor order, starts;
  bool defined() const { return order.defined(); }
};
LatentOrder latent_order(const torch::Tensor& idx, int64_t d_sae);

// The first `size` (>= 1) entries set (> 0) in `fired` [B, d_sae], row by row and in column order
// within a row: their latents `idx` and rows `row` [size], padded past the set entries with latent
// 0 of the last row; `offsets` [B], where each row's entries start (at most size); and `listed`,
// the set entries in all (more than size where the code is cut).
struct ListedEntries {
  torch::Tensor idx, row, offsets;
  int64_t listed = 0;
};
ListedEntries list_set_entries(const torch::Tensor& fired, int64_t size);

// Row b of [B, d_in]: sum over its entries e (offsets[b] up to the next row's start, the last row's
// up to n) of vals[e] W[idx[e]]. W [d_sae, d_in].
torch::Tensor sum_over_rows(const torch::Tensor& W, const torch::Tensor& idx, const torch::Tensor& offsets,
                            const torch::Tensor& vals);
// M[row[e], idx[e]] for each entry e, [n]. M [B, d_sae].
torch::Tensor entries_at(const torch::Tensor& M, const torch::Tensor& row, const torch::Tensor& idx);
// A[row[e]] . W[idx[e]] for each entry e, [n]. A [B, d_in], W [d_sae, d_in].
torch::Tensor entry_dots(const torch::Tensor& A, const torch::Tensor& row, const torch::Tensor& W,
                         const torch::Tensor& idx);
// Latent l's sum over its entries e of weights[e] A[row[e]], A [B, d_in]: row l of [d_sae, d_in]
// (W_dec's layout), or column l of [d_in, d_sae] (W_enc's, so that its gradient needs no copy).
enum class LatentSums { AsRows, AsColumns };
torch::Tensor sum_over_latents(const torch::Tensor& A, const torch::Tensor& row, const torch::Tensor& weights,
                               const LatentOrder& by_latent, LatentSums layout);

}  // namespace sweep::sae
