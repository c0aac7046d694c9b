// The maths of candidate pairs, the absorption penalty's alternative to d_sae x d_sae matrices:
// the pairs whose decoder cosine exceeds a threshold, found with a blocked decoder Gram; their
// cosines and co-firing counts; the penalty over them. Nothing here is of size d_sae x d_sae.
#pragma once

#include <torch/torch.h>

#include "sae/sparse_code.h"

namespace sweep::sae {

// Rows of W_dec scaled to unit norm (with gradient when W_dec has one).
torch::Tensor unit_rows(const torch::Tensor& W_dec);

struct CandidateSearch {
  torch::Tensor i, j;         // [n] int64, i < j, sorted by (i, j): the pairs with cosine > threshold
  torch::Tensor cosine;       // [n] their cosines
  torch::Tensor outside_max;  // [d_sae] each row's largest cosine to a row it is not paired with (-2: none)
};

// Row blocks of unit rows against all of them, thresholded, indices kept; at most
// `block_elements` cosines exist at once. Reads the device (the number of pairs found).
CandidateSearch find_candidates(const torch::Tensor& unit, double threshold, int64_t block_elements = int64_t{1} << 24);

// A cosine c such that about `pairs` pairs i < j have a cosine above it (-inf when there are not
// that many pairs), estimated from the cosines of evenly spaced rows to all rows: every row when
// d_sae rows fit in `block_elements`, otherwise as many as do. Reads the device.
double cosine_above_pair_count(const torch::Tensor& unit, int64_t pairs, int64_t block_elements = int64_t{1} << 24);

// The k-th largest of `values` [n] (1 <= k <= n), exactly. Reads the device.
double kth_largest(const torch::Tensor& values, int64_t k);

struct TopPairs {
  torch::Tensor i, j, cosine;  // [k] int64, int64, float: i < j, highest cosine first
};

// The k pairs i < j of highest cosine (fewer when there are fewer pairs), by the same blocked Gram:
// each block's best k, merged.
TopPairs top_cosine_pairs(const torch::Tensor& unit, int64_t k, int64_t block_elements = int64_t{1} << 24);

// <u_i, u_j> for the listed pairs (no gradient), in chunks of at most `chunk_elements` products.
torch::Tensor pair_cosines(const torch::Tensor& unit, const torch::Tensor& i, const torch::Tensor& j,
                           int64_t chunk_elements = int64_t{1} << 18);

// A batch's firing `fired` [B, d_sae] (bool, or firing()'s 0/1 numbers) as bits: [d_sae, ceil(B / 64)] int64, one
// latent per row, row b of the batch in bit b % 64 of word b / 64 (the last word padded with 0).
torch::Tensor packed_firing(const torch::Tensor& fired);

// packed_firing of a sparse code's B rows, with `fired` [n] (bool or 0/1 numbers) saying which of
// its entries fired; each latent at most once per row (padding, which may repeat one, must have
// fired 0). The same bits from the code's n entries instead of B d_sae.
torch::Tensor packed_code_firing(const ChosenLatents& code, const torch::Tensor& fired, int64_t d_sae);

// The number of set bits of each row of `words` [n, w] int64 (w < 4096), as [n] int32.
torch::Tensor popcount(const torch::Tensor& words);

// sum_b a_bi a_bj for the listed pairs, from a batch's `packed_firing`: an AND and a popcount of
// the two latents' bits, never a d_sae x d_sae product. In chunks of at most `chunk_elements`
// words. As int32.
torch::Tensor pair_co_firing(const torch::Tensor& packed, const torch::Tensor& i, const torch::Tensor& j,
                             int64_t chunk_elements = int64_t{1} << 18);

// The positions of `mask`'s set entries where reading them costs nothing (on the CPU), every
// position elsewhere (a GPU would have to stop and count them): callers treat the extra positions
// as unset, so both give the same result. [m] int64.
torch::Tensor positions_to_visit(const torch::Tensor& mask);

// sum_p w_p cos(d_{i_p}, d_{j_p}), with gradient through W_dec (none through the weights); `unit`
// is W_dec's unit rows. The gradient is written out rather than traced, pair by pair in chunks of
// at most `chunk_elements`: only the pairs' rows are touched, and no [d_sae, d_sae] matrix is made.
// No pairs: a constant 0.
torch::Tensor weighted_pair_cosines(const torch::Tensor& W_dec, const torch::Tensor& unit, const torch::Tensor& i,
                                    const torch::Tensor& j, const torch::Tensor& weights,
                                    int64_t chunk_elements = int64_t{1} << 18);

// The largest amount by which the cosine of a pair outside the candidates can have grown since
// the search, as a bound: for unit rows |cos_ij - cos_ij(search)| <= |u_i - u_i(search)| +
// |u_j - u_j(search)|, so no pair outside can exceed max_i(outside_max_i + D_i) + max_j D_j.
// `drift` [d_sae] holds each row's D_i.
torch::Tensor outside_cosine_bound(const torch::Tensor& outside_max, const torch::Tensor& drift);

}  // namespace sweep::sae
