// OrtSAE's orthogonality penalty (arXiv 2509.22033) as a training penalty (sae/penalty.h): the
// decoder rows are split into random chunks of orthogonality.chunk_size, drawn anew every step;
// each latent's largest squared cosine with another latent of its chunk, averaged over the latents,
// weighted by orthogonality.penalty (0: off). The chunks follow the job's seed and the step, so
// every rank of a group and every resume draws the same ones. Cost: d_sae x chunk_size x d_in
// multiply-adds a step, linear in d_sae; no d_sae x d_sae matrix unless d_sae <= chunk_size.
#pragma once

#include "sae/penalty.h"

namespace sweep::sae {

PenaltyEntry orthogonality_penalty_entry();

// The unweighted penalty of the decoder rows `W_dec` [d_sae, d_in] (unit rows) split into chunks
// of at most `chunk_size` by the permutation `order` [d_sae]: mean over latents of
// max_{j != i in i's chunk} cos(i, j)^2, with gradient into W_dec.
torch::Tensor orthogonality_loss(const torch::Tensor& W_dec, const torch::Tensor& order, int64_t chunk_size);

// The permutation of d_sae latents that step `step` of a job seeded `seed` chunks by.
torch::Tensor orthogonality_order(int64_t d_sae, uint64_t seed, int64_t step);

}  // namespace sweep::sae
